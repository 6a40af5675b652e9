//! Statistics of a container's cgroup, in the JSON shape of runc's
//! `types.Stats` (what `runc events` prints), so tools reading runc's output
//! read ours.
//!
//! Zero counters are left out where runc's encoder leaves them out, so two
//! runtimes on the same cgroup print the same object. A file the kernel does
//! not provide (no swap accounting, no memory.peak before 5.19, a cgroup just
//! removed) reads as zero, as in runc; any other read error is reported.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{sysconf, SysconfVar};
use serde::Serialize;

use super::{fsutil, Cgroup, CgroupError, Layout};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, as v1's memsw counts it (also on v2, as runc does).
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat as it is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    /// u64::MAX for "no limit", as runc prints it.
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 for "max" (no limit).
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

impl Cgroup {
    /// Read the container cgroup's statistics from every hierarchy that has
    /// them: cpu/cpuacct, memory, pids and blkio from v1 on v1 and hybrid
    /// hosts, everything from the single directory on pure v2, and hugetlb
    /// from whichever hierarchy carries it (the cgroup2 one on this project's
    /// hybrid hosts).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if self.layout() == Layout::V2 {
            if let Some(dir) = self.controller_path("memory") {
                v2::read(dir, &mut s)?;
            }
            return Ok(s);
        }
        if let Some(d) = self.controller_path("cpuacct") {
            v1::cpuacct(d, &mut s.cpu.usage)?;
        }
        if let Some(d) = self.controller_path("cpu") {
            v1::throttling(d, &mut s.cpu.throttling)?;
        }
        if let Some(d) = self.controller_path("memory") {
            v1::memory(d, &mut s.memory)?;
        }
        if let Some(d) = self.controller_path("pids") {
            pids(d, &mut s.pids)?;
        }
        if let Some(d) = self.controller_path("blkio") {
            v1::blkio(d, &mut s.blkio)?;
        }
        if let Some(d) = self.controller_path("hugetlb") {
            hugetlb(d, false, &mut s.hugetlb)?;
        } else if self.layout() == Layout::Hybrid {
            // paths() lists the cgroup2 directory last.
            if let Some(d) = self.paths().last() {
                hugetlb(d, true, &mut s.hugetlb)?;
            }
        }
        Ok(s)
    }
}

/// A control file's contents, or None if the kernel does not provide it.
fn read_opt(dir: &Path, file: &str) -> Result<Option<String>, CgroupError> {
    let path = dir.join(file);
    match fsutil::read_file(&path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read { path, source }),
    }
}

fn bad(path: PathBuf, what: &str) -> CgroupError {
    CgroupError::Read {
        path,
        source: io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {what:?}")),
    }
}

fn num(dir: &Path, s: &str) -> Result<u64, CgroupError> {
    s.trim().parse().map_err(|_| bad(dir.to_path_buf(), s))
}

/// A single-number file; "max" maps to `max`, a missing file to 0.
fn value(dir: &Path, file: &str, max: u64) -> Result<u64, CgroupError> {
    match read_opt(dir, file)? {
        None => Ok(0),
        Some(t) if t.trim() == "max" => Ok(max),
        Some(t) => t.trim().parse().map_err(|_| bad(dir.join(file), &t)),
    }
}

/// A flat-keyed file ("key value" lines) such as memory.stat or cpu.stat.
fn keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>, CgroupError> {
    let mut out = BTreeMap::new();
    for line in read_opt(dir, file)?.unwrap_or_default().lines() {
        let Some((k, v)) = line.split_once(' ') else {
            continue;
        };
        let v = v.trim().parse().map_err(|_| bad(dir.join(file), line))?;
        out.insert(k.to_string(), v);
    }
    Ok(out)
}

fn pids(dir: &Path, p: &mut Pids) -> Result<(), CgroupError> {
    p.current = value(dir, "pids.current", 0)?;
    p.limit = value(dir, "pids.max", 0)?;
    Ok(())
}

/// Page sizes as cgroup file names spell them ("2MB", "1GB"), from the
/// kernel's hugepages directory (e.g. hugepages-2048kB).
fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut out: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(size_name(kb))
        })
        .collect();
    out.sort();
    out
}

fn size_name(kb: u64) -> String {
    match kb {
        k if k >= 1 << 20 && k % (1 << 20) == 0 => format!("{}GB", k >> 20),
        k if k >= 1 << 10 && k % (1 << 10) == 0 => format!("{}MB", k >> 10),
        k => format!("{k}KB"),
    }
}

fn hugetlb(dir: &Path, v2: bool, out: &mut BTreeMap<String, Hugetlb>) -> Result<(), CgroupError> {
    for size in hugepage_sizes() {
        let h = if v2 {
            // Without hugetlb enabled in this cgroup there are no such files.
            if !dir.join(format!("hugetlb.{size}.current")).exists() {
                continue;
            }
            let events = keyed(dir, &format!("hugetlb.{size}.events"))?;
            Hugetlb {
                usage: value(dir, &format!("hugetlb.{size}.current"), 0)?,
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            }
        } else {
            Hugetlb {
                usage: value(dir, &format!("hugetlb.{size}.usage_in_bytes"), 0)?,
                max: value(dir, &format!("hugetlb.{size}.max_usage_in_bytes"), 0)?,
                failcnt: value(dir, &format!("hugetlb.{size}.failcnt"), 0)?,
            }
        };
        out.insert(size, h);
    }
    Ok(())
}

mod v1 {
    use super::*;

    fn list(dir: &Path, file: &str) -> Result<Vec<u64>, CgroupError> {
        let text = read_opt(dir, file)?.unwrap_or_default();
        text.split_whitespace()
            .map(|s| num(&dir.join(file), s))
            .collect()
    }

    pub(super) fn cpuacct(dir: &Path, u: &mut CpuUsage) -> Result<(), CgroupError> {
        u.total = value(dir, "cpuacct.usage", 0)?;
        u.percpu = list(dir, "cpuacct.usage_percpu")?;
        // "cpu user system" then one line per cpu, in nanoseconds.
        for line in read_opt(dir, "cpuacct.usage_all")?
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let [_, user, sys] = f[..] {
                u.percpu_user
                    .push(num(&dir.join("cpuacct.usage_all"), user)?);
                u.percpu_kernel
                    .push(num(&dir.join("cpuacct.usage_all"), sys)?);
            }
        }
        // cpuacct.stat counts clock ticks.
        let hz = sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100)
            .max(1) as u64;
        let stat = keyed(dir, "cpuacct.stat")?;
        let ns = |k: &str| {
            stat.get(k)
                .copied()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000)
                / hz
        };
        u.user = ns("user");
        u.kernel = ns("system");
        Ok(())
    }

    pub(super) fn throttling(dir: &Path, t: &mut Throttling) -> Result<(), CgroupError> {
        let s = keyed(dir, "cpu.stat")?;
        t.periods = s.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = s.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = s.get("throttled_time").copied().unwrap_or(0);
        Ok(())
    }

    fn entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
        let f = |name: &str| format!("{prefix}.{name}");
        Ok(MemoryEntry {
            limit: value(dir, &f("limit_in_bytes"), u64::MAX)?,
            usage: value(dir, &f("usage_in_bytes"), 0)?,
            max: value(dir, &f("max_usage_in_bytes"), 0)?,
            failcnt: value(dir, &f("failcnt"), 0)?,
        })
    }

    pub(super) fn memory(dir: &Path, m: &mut Memory) -> Result<(), CgroupError> {
        m.raw = keyed(dir, "memory.stat")?;
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        m.usage = entry(dir, "memory")?;
        m.swap = entry(dir, "memory.memsw")?;
        m.kernel = entry(dir, "memory.kmem")?;
        m.kernel_tcp = entry(dir, "memory.kmem.tcp")?;
        Ok(())
    }

    /// "MAJ:MIN Op Value" lines; the closing "Total N" line has no device.
    pub(super) fn blkio_entries(path: &Path, text: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [dev, op, v] = f[..] else { continue };
            let Some((maj, min)) = dev.split_once(':') else {
                return Err(bad(path.to_path_buf(), line));
            };
            out.push(BlkioEntry {
                major: num(path, maj)?,
                minor: num(path, min)?,
                op: op.to_string(),
                value: num(path, v)?,
            });
        }
        Ok(out)
    }

    /// BFQ's counters when the BFQ scheduler provides them, else the
    /// throttle layer's, which count every bio whatever the scheduler.
    pub(super) fn blkio(dir: &Path, b: &mut Blkio) -> Result<(), CgroupError> {
        for prefix in ["blkio.bfq", "blkio.throttle"] {
            let bytes = format!("{prefix}.io_service_bytes_recursive");
            let ios = format!("{prefix}.io_serviced_recursive");
            let Some(t) = read_opt(dir, &bytes)? else {
                continue;
            };
            b.io_service_bytes_recursive = blkio_entries(&dir.join(&bytes), &t)?;
            let t = read_opt(dir, &ios)?.unwrap_or_default();
            b.io_serviced_recursive = blkio_entries(&dir.join(&ios), &t)?;
            if !b.io_service_bytes_recursive.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

mod v2 {
    use super::*;

    pub(super) fn read(dir: &Path, s: &mut Stats) -> Result<(), CgroupError> {
        let cpu = keyed(dir, "cpu.stat")?;
        let us = |k: &str| cpu.get(k).copied().unwrap_or(0).saturating_mul(1000);
        s.cpu.usage.total = us("usage_usec");
        s.cpu.usage.user = us("user_usec");
        s.cpu.usage.kernel = us("system_usec");
        s.cpu.throttling.periods = cpu.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = cpu.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = us("throttled_usec");

        let m = &mut s.memory;
        m.raw = keyed(dir, "memory.stat")?;
        m.cache = m.raw.get("file").copied().unwrap_or(0);
        let events = keyed(dir, "memory.events")?;
        m.usage = MemoryEntry {
            limit: value(dir, "memory.max", u64::MAX)?,
            usage: value(dir, "memory.current", 0)?,
            max: value(dir, "memory.peak", 0)?,
            // How often the limit was hit: the nearest thing to v1's failcnt.
            failcnt: events.get("max").copied().unwrap_or(0),
        };
        if dir.join("memory.swap.current").exists() {
            let swap_limit = value(dir, "memory.swap.max", u64::MAX)?;
            m.swap = MemoryEntry {
                limit: m.usage.limit.saturating_add(swap_limit),
                usage: m.usage.usage + value(dir, "memory.swap.current", 0)?,
                max: 0,
                failcnt: 0,
            };
        }
        pids(dir, &mut s.pids)?;
        if let Some(t) = read_opt(dir, "io.stat")? {
            io_stat(&dir.join("io.stat"), &t, &mut s.blkio)?;
        }
        hugetlb(dir, true, &mut s.hugetlb)
    }

    /// "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N" per device.
    pub(super) fn io_stat(path: &Path, text: &str, b: &mut Blkio) -> Result<(), CgroupError> {
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
                continue;
            };
            let (major, minor) = (num(path, maj)?, num(path, min)?);
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(bad(path.to_path_buf(), kv));
                };
                let (list, op) = match k {
                    "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                    "dbytes" => (&mut b.io_service_bytes_recursive, "Discard"),
                    "rios" => (&mut b.io_serviced_recursive, "Read"),
                    "wios" => (&mut b.io_serviced_recursive, "Write"),
                    "dios" => (&mut b.io_serviced_recursive, "Discard"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.into(),
                    value: num(path, v)?,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_names() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1_048_576), "1GB");
        assert_eq!(size_name(64), "64KB");
    }

    #[test]
    fn blkio_lines() {
        let p = Path::new("x");
        let e = v1::blkio_entries(p, "254:0 Read 5\n254:0 Total 5\nTotal 5\n").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].major, e[0].minor, e[0].op.as_str(), e[0].value),
            (254, 0, "Read", 5)
        );
        assert!(v1::blkio_entries(p, "2540 Read 5\n").is_err());
    }

    #[test]
    fn io_stat_lines() {
        let mut b = Blkio::default();
        v2::io_stat(
            Path::new("x"),
            "8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n",
            &mut b,
        )
        .unwrap();
        let ops: Vec<_> = b
            .io_service_bytes_recursive
            .iter()
            .map(|e| (&*e.op, e.value))
            .collect();
        assert_eq!(ops, [("Read", 1), ("Write", 2), ("Discard", 0)]);
        assert_eq!(b.io_serviced_recursive[1].value, 4);
        assert_eq!(b.io_serviced_recursive[1].minor, 16);
    }

    #[test]
    fn json_leaves_out_what_runc_leaves_out() {
        let v = serde_json::to_value(Stats::default()).unwrap();
        assert_eq!(
            v["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 0, "failcnt": 0})
        );
        assert_eq!(v["pids"], serde_json::json!({}));
        assert!(v["memory"].get("kernelTCP").is_some());
        assert_eq!(v["hugetlb"], serde_json::json!({}));
    }
}
