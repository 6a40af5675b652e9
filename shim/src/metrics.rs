//! Stats: berth's typed cgroup statistics (runc's schema) as the cgroups
//! metrics protobuf of the host's layout, which containerd wants (`ctr task
//! metrics` and the CRI decode it by type URL). v1 and hybrid hosts get
//! `io.containerd.cgroups.v1.Metrics`, pure v2 hosts the v2 message, as with
//! runc's shim.

use std::collections::BTreeMap;

use berth::api::stats::{BlkioEntry, MemoryEntry};
use berth::api::Stats;
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;

use crate::error::{Error, Result};

/// True when /sys/fs/cgroup is the cgroup2 root (no v1 hierarchies).
pub fn host_is_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// berth's statistics as the metrics message of the host's layout.
pub fn to_any(s: &Stats, v2_host: bool) -> Result<Any> {
    let (type_url, value) = if v2_host {
        (
            "io.containerd.cgroups.v2.Metrics",
            to_v2(s).write_to_bytes(),
        )
    } else {
        (
            "io.containerd.cgroups.v1.Metrics",
            to_v1(s).write_to_bytes(),
        )
    };
    Ok(Any {
        type_url: type_url.to_string(),
        value: value.map_err(|source| Error::Proto {
            what: "encode metrics",
            source,
        })?,
        ..Default::default()
    })
}

fn entry(e: &MemoryEntry) -> v1::MemoryEntry {
    v1::MemoryEntry {
        limit: e.limit,
        usage: e.usage,
        max: e.max,
        failcnt: e.failcnt,
        ..Default::default()
    }
}

fn blkio(v: &[BlkioEntry]) -> Vec<v1::BlkIOEntry> {
    v.iter()
        .map(|e| v1::BlkIOEntry {
            op: e.op.clone(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

fn to_v1(s: &Stats) -> v1::Metrics {
    let r = |k: &str| s.memory.raw.get(k).copied().unwrap_or(0);
    let m = &s.memory;
    let memory = v1::MemoryStat {
        cache: m.cache,
        rss: r("rss"),
        rss_huge: r("rss_huge"),
        mapped_file: r("mapped_file"),
        dirty: r("dirty"),
        writeback: r("writeback"),
        pg_pg_in: r("pgpgin"),
        pg_pg_out: r("pgpgout"),
        pg_fault: r("pgfault"),
        pg_maj_fault: r("pgmajfault"),
        inactive_anon: r("inactive_anon"),
        active_anon: r("active_anon"),
        inactive_file: r("inactive_file"),
        active_file: r("active_file"),
        unevictable: r("unevictable"),
        hierarchical_memory_limit: r("hierarchical_memory_limit"),
        hierarchical_swap_limit: r("hierarchical_memsw_limit"),
        total_cache: r("total_cache"),
        total_rss: r("total_rss"),
        total_rss_huge: r("total_rss_huge"),
        total_mapped_file: r("total_mapped_file"),
        total_dirty: r("total_dirty"),
        total_writeback: r("total_writeback"),
        total_pg_pg_in: r("total_pgpgin"),
        total_pg_pg_out: r("total_pgpgout"),
        total_pg_fault: r("total_pgfault"),
        total_pg_maj_fault: r("total_pgmajfault"),
        total_inactive_anon: r("total_inactive_anon"),
        total_active_anon: r("total_active_anon"),
        total_inactive_file: r("total_inactive_file"),
        total_active_file: r("total_active_file"),
        total_unevictable: r("total_unevictable"),
        usage: Some(entry(&m.usage)).into(),
        swap: Some(entry(&m.swap)).into(),
        kernel: Some(entry(&m.kernel)).into(),
        kernel_tcp: Some(entry(&m.kernel_tcp)).into(),
        ..Default::default()
    };
    let c = &s.cpu;
    v1::Metrics {
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v1::HugetlbStat {
                usage: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        pids: Some(v1::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(v1::CPUStat {
            usage: Some(v1::CPUUsage {
                total: c.usage.total,
                kernel: c.usage.kernel,
                user: c.usage.user,
                per_cpu: c.usage.percpu.clone(),
                ..Default::default()
            })
            .into(),
            throttling: Some(v1::Throttle {
                periods: c.throttling.periods,
                throttled_periods: c.throttling.throttled_periods,
                throttled_time: c.throttling.throttled_time,
                ..Default::default()
            })
            .into(),
            ..Default::default()
        })
        .into(),
        memory: Some(memory).into(),
        blkio: Some(v1::BlkIOStat {
            io_service_bytes_recursive: blkio(&s.blkio.io_service_bytes_recursive),
            io_serviced_recursive: blkio(&s.blkio.io_serviced_recursive),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}

/// v2 io.stat rows, rebuilt from runc's per-op blkio entries.
fn io_v2(b: &berth::api::stats::Blkio) -> Vec<v2::IOEntry> {
    let mut rows: BTreeMap<(u64, u64), v2::IOEntry> = BTreeMap::new();
    let mut add = |list: &[BlkioEntry], bytes: bool| {
        for e in list {
            let row = rows
                .entry((e.major, e.minor))
                .or_insert_with(|| v2::IOEntry {
                    major: e.major,
                    minor: e.minor,
                    ..Default::default()
                });
            match (e.op.as_str(), bytes) {
                ("Read", true) => row.rbytes = e.value,
                ("Write", true) => row.wbytes = e.value,
                ("Read", false) => row.rios = e.value,
                ("Write", false) => row.wios = e.value,
                _ => {}
            }
        }
    };
    add(&b.io_service_bytes_recursive, true);
    add(&b.io_serviced_recursive, false);
    rows.into_values().collect()
}

fn to_v2(s: &Stats) -> v2::Metrics {
    let r = |k: &str| s.memory.raw.get(k).copied().unwrap_or(0);
    let m = &s.memory;
    // runc reports swap as memory + swap (v1's memsw), also on v2.
    let swap_limit = if m.swap.limit == u64::MAX || m.usage.limit == u64::MAX {
        m.swap.limit
    } else {
        m.swap.limit.saturating_sub(m.usage.limit)
    };
    let memory = v2::MemoryStat {
        anon: r("anon"),
        file: r("file"),
        kernel_stack: r("kernel_stack"),
        slab: r("slab"),
        sock: r("sock"),
        shmem: r("shmem"),
        file_mapped: r("file_mapped"),
        file_dirty: r("file_dirty"),
        file_writeback: r("file_writeback"),
        anon_thp: r("anon_thp"),
        inactive_anon: r("inactive_anon"),
        active_anon: r("active_anon"),
        inactive_file: r("inactive_file"),
        active_file: r("active_file"),
        unevictable: r("unevictable"),
        slab_reclaimable: r("slab_reclaimable"),
        slab_unreclaimable: r("slab_unreclaimable"),
        pgfault: r("pgfault"),
        pgmajfault: r("pgmajfault"),
        workingset_refault: r("workingset_refault"),
        workingset_activate: r("workingset_activate"),
        workingset_nodereclaim: r("workingset_nodereclaim"),
        pgrefill: r("pgrefill"),
        pgscan: r("pgscan"),
        pgsteal: r("pgsteal"),
        pgactivate: r("pgactivate"),
        pgdeactivate: r("pgdeactivate"),
        pglazyfree: r("pglazyfree"),
        pglazyfreed: r("pglazyfreed"),
        thp_fault_alloc: r("thp_fault_alloc"),
        thp_collapse_alloc: r("thp_collapse_alloc"),
        usage: m.usage.usage,
        usage_limit: m.usage.limit,
        swap_usage: m.swap.usage.saturating_sub(m.usage.usage),
        swap_limit,
        max_usage: m.usage.max,
        ..Default::default()
    };
    let c = &s.cpu;
    v2::Metrics {
        pids: Some(v2::PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        })
        .into(),
        cpu: Some(v2::CPUStat {
            usage_usec: c.usage.total / 1000,
            user_usec: c.usage.user / 1000,
            system_usec: c.usage.kernel / 1000,
            nr_periods: c.throttling.periods,
            nr_throttled: c.throttling.throttled_periods,
            throttled_usec: c.throttling.throttled_time / 1000,
            ..Default::default()
        })
        .into(),
        memory: Some(memory).into(),
        io: Some(v2::IOStat {
            usage: io_v2(&s.blkio),
            ..Default::default()
        })
        .into(),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| v2::HugeTlbStat {
                current: h.usage,
                max: h.max,
                failcnt: h.failcnt,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statistics of a cgroup, as berth reads them.
    fn sample() -> Stats {
        let mut s = Stats::default();
        let c = &mut s.cpu;
        (c.usage.total, c.usage.kernel, c.usage.user) = (5000, 1000, 4000);
        c.usage.percpu = vec![3000, 2000];
        c.throttling.periods = 7;
        let m = &mut s.memory;
        m.cache = 11;
        (m.usage.limit, m.usage.usage, m.usage.max, m.usage.failcnt) = (16777216, 4096, 8192, 2);
        (m.swap.limit, m.swap.usage) = (33554432, 6144);
        m.raw = [("rss", 123), ("total_rss", 456), ("anon", 99)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        (s.pids.current, s.pids.limit) = (3, 10);
        let entry = |op: &str, value| BlkioEntry {
            major: 8,
            minor: 0,
            op: op.into(),
            value,
        };
        s.blkio.io_service_bytes_recursive = vec![entry("Read", 512), entry("Write", 1024)];
        let h = berth::api::stats::Hugetlb {
            usage: 4,
            ..Default::default()
        };
        s.hugetlb.insert("2MB".into(), h);
        s
    }

    #[test]
    fn v1_fields_carried() {
        let any = to_any(&sample(), false).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v1.Metrics");
        let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(m.cpu.usage.total, 5000);
        assert_eq!(m.cpu.usage.per_cpu, vec![3000, 2000]);
        assert_eq!(m.cpu.throttling.periods, 7);
        assert_eq!(m.memory.usage.usage, 4096);
        assert_eq!(m.memory.usage.failcnt, 2);
        assert_eq!(
            (m.memory.rss, m.memory.total_rss, m.memory.cache),
            (123, 456, 11)
        );
        assert_eq!((m.pids.current, m.pids.limit), (3, 10));
        assert_eq!(m.blkio.io_service_bytes_recursive.len(), 2);
        assert_eq!(m.hugetlb[0].pagesize, "2MB");
    }

    #[test]
    fn v2_fields_carried() {
        let any = to_any(&sample(), true).unwrap();
        assert_eq!(any.type_url, "io.containerd.cgroups.v2.Metrics");
        let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (5, 4, 1)
        );
        assert_eq!(
            (m.memory.usage, m.memory.usage_limit, m.memory.anon),
            (4096, 16777216, 99)
        );
        assert_eq!((m.memory.swap_usage, m.memory.swap_limit), (2048, 16777216));
        assert_eq!(m.io.usage.len(), 1);
        assert_eq!((m.io.usage[0].rbytes, m.io.usage[0].wbytes), (512, 1024));
        assert_eq!(m.hugetlb[0].current, 4);
    }
}
