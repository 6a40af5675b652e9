//! Stats: `berth events --stats` prints runc's stats JSON; containerd wants
//! the cgroups metrics protobuf of the host's layout (`ctr task metrics` and
//! the CRI decode it by type URL). v1 and hybrid hosts get
//! `io.containerd.cgroups.v1.Metrics`, pure v2 hosts the v2 message, as with
//! runc's shim.

use std::collections::BTreeMap;

use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    data: Option<Stats>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Stats {
    cpu: Cpu,
    memory: Memory,
    pids: Pids,
    blkio: Blkio,
    hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Cpu {
    usage: CpuUsage,
    throttling: Throttling,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CpuUsage {
    total: u64,
    percpu: Vec<u64>,
    kernel: u64,
    user: u64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Throttling {
    periods: u64,
    throttled_periods: u64,
    throttled_time: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Memory {
    cache: u64,
    usage: Entry,
    swap: Entry,
    kernel: Entry,
    #[serde(rename = "kernelTCP")]
    kernel_tcp: Entry,
    raw: BTreeMap<String, u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    limit: u64,
    usage: u64,
    max: u64,
    failcnt: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Pids {
    current: u64,
    limit: u64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Blkio {
    io_service_bytes_recursive: Vec<BlkioEntry>,
    io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BlkioEntry {
    major: u64,
    minor: u64,
    op: String,
    value: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Hugetlb {
    usage: u64,
    max: u64,
    failcnt: u64,
}

/// True when /sys/fs/cgroup is the cgroup2 root (no v1 hierarchies).
pub fn host_is_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn parse(json: &[u8]) -> Result<Stats> {
    let line = json
        .split(|&b| b == b'\n')
        .find(|l| !l.is_empty())
        .ok_or_else(|| Error::invalid("berth events --stats", "no output"))?;
    let ev: Event = serde_json::from_slice(line)
        .map_err(|e| Error::invalid("berth events --stats output", e.to_string()))?;
    match (ev.kind.as_str(), ev.data) {
        ("stats", Some(s)) => Ok(s),
        (k, _) => Err(Error::invalid(
            "berth events --stats output",
            format!("event type {k:?} without stats"),
        )),
    }
}

/// The berth stats line as the metrics message of the host's layout.
pub fn to_any(json: &[u8], v2_host: bool) -> Result<Any> {
    let s = parse(json)?;
    let (type_url, value) = if v2_host {
        (
            "io.containerd.cgroups.v2.Metrics",
            to_v2(&s).write_to_bytes(),
        )
    } else {
        (
            "io.containerd.cgroups.v1.Metrics",
            to_v1(&s).write_to_bytes(),
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

fn entry(e: &Entry) -> v1::MemoryEntry {
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
fn io_v2(b: &Blkio) -> Vec<v2::IOEntry> {
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

    const LINE: &[u8] = br#"{"type":"stats","id":"c","data":{"cpu":{"usage":{"total":5000,"percpu":[3000,2000],"kernel":1000,"user":4000},"throttling":{"periods":7}},"memory":{"cache":11,"usage":{"limit":16777216,"usage":4096,"max":8192,"failcnt":2},"swap":{"limit":33554432,"usage":6144,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0},"raw":{"rss":123,"total_rss":456,"anon":99}},"pids":{"current":3,"limit":10},"blkio":{"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":512},{"major":8,"op":"Write","value":1024}]},"hugetlb":{"2MB":{"usage":4,"failcnt":0}}}}"#;

    #[test]
    fn v1_fields_carried() {
        let any = to_any(LINE, false).unwrap();
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
        let any = to_any(LINE, true).unwrap();
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

    #[test]
    fn garbage_is_a_clear_error() {
        let e = to_any(b"not json\n", false).unwrap_err().to_string();
        assert!(e.starts_with("invalid berth events --stats output:"), "{e}");
        let e = to_any(br#"{"type":"oom","id":"c"}"#, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("event type \"oom\" without stats"), "{e}");
        assert!(to_any(b"", true).is_err());
    }
}
