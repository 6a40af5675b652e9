//! Operations on a live container's cgroup: `pause`, `resume`, `update`
//! and `ps`, with runc's rules for which status each accepts.

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use crate::error::{Context, Error, Result};
use crate::state::{Dir, Status};

/// Freeze every process of a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Running {
        return Err(Error::BadStatus {
            op: "container not running",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    st.need_cgroup("pause")?;
    Ok(st.cgroup.set_frozen(true)?)
}

/// Thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Paused {
        return Err(Error::BadStatus {
            op: "container not paused",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    st.need_cgroup("resume")?;
    Ok(st.cgroup.set_frozen(false)?)
}

/// runc's `ps`: "json" prints the container's host pids as a JSON array;
/// "table" runs `ps ARGS` (default -ef) and keeps the header and the rows
/// whose PID column is one of them.
pub fn ps(root: &Path, id: &str, format: &str, args: &[String]) -> Result<String> {
    if format != "json" && format != "table" {
        return Err(Error::Invalid(format!("invalid format option {format:?}")));
    }
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    drop(dir);
    st.need_cgroup("ps")?;
    let pids = st.cgroup.pids()?;
    if format == "json" {
        let json = serde_json::to_string(&pids).map_err(|e| Error::Invalid(e.to_string()))?;
        return Ok(json + "\n");
    }
    let default = ["-ef".to_owned()];
    let args = if args.is_empty() { &default[..] } else { args };
    let out = std::process::Command::new("ps")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .ctx(|| "run ps".to_owned())?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "ps {}: {}",
            args.join(" "),
            out.status
        )));
    }
    filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)
}

fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|f| f == "PID") else {
        return Err(Error::Invalid(
            "couldn't find PID field in ps output".into(),
        ));
    };
    let mut out = String::from(header);
    out.push('\n');
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p: i32| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

/// `update`'s command line, as runc's flags (the `String`s take runc's
/// size suffixes: 512k, 64m, 1g; "-1" is unlimited).
#[derive(Debug, Default)]
pub struct UpdateOpts {
    /// A LinuxResources JSON file, "-" for stdin; the flags are then ignored.
    pub resources: Option<String>,
    pub memory: Option<String>,
    pub memory_reservation: Option<String>,
    pub memory_swap: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpu_rt_period: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

/// docker/go-units' RAMInBytes, which runc uses: a number with an optional
/// binary unit (k, m, g, t, p; an optional "b" or "ib" after it).
pub fn parse_size(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let bad = || Error::Invalid(format!("--{flag}: invalid size {v:?}"));
    let lower = v.trim().to_ascii_lowercase();
    let num_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(num_end);
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

impl UpdateOpts {
    /// The requested change as a partial LinuxResources.
    fn to_resources(&self) -> Result<LinuxResources> {
        if self.l3_cache_schema.is_some() || self.mem_bw_schema.is_some() {
            return Err(Error::Unsupported("linux.intelRdt".into()));
        }
        if let Some(src) = &self.resources {
            let mut data = Vec::new();
            if src == "-" {
                std::io::stdin()
                    .read_to_end(&mut data)
                    .ctx(|| "read resources from stdin".to_owned())?;
            } else {
                data = std::fs::read(src).ctx(|| format!("read {src}"))?;
            }
            return serde_json::from_slice(&data)
                .map_err(|e| Error::Invalid(format!("--resources {src}: {e}")));
        }
        let size = |flag, v: &Option<String>| v.as_deref().map(|v| parse_size(flag, v)).transpose();
        let mut r = LinuxResources::default();
        let limit = size("memory", &self.memory)?;
        let reservation = size("memory-reservation", &self.memory_reservation)?;
        let swap = size("memory-swap", &self.memory_swap)?;
        let kernel = size("kernel-memory", &self.kernel_memory)?;
        let kernel_tcp = size("kernel-memory-tcp", &self.kernel_memory_tcp)?;
        if [limit, reservation, swap, kernel, kernel_tcp]
            .iter()
            .any(Option::is_some)
        {
            let mut m = LinuxMemory::default();
            m.set_limit(limit)
                .set_reservation(reservation)
                .set_swap(swap)
                .set_kernel_tcp(kernel_tcp);
            #[allow(deprecated)] // still honoured on v1 kernels that have it
            m.set_kernel(kernel);
            r.set_memory(Some(m));
        }
        let cpu_set = self.cpu_shares.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_period.is_some()
            || self.cpu_rt_runtime.is_some()
            || self.cpu_rt_period.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some();
        if cpu_set {
            let mut c = LinuxCpu::default();
            c.set_shares(self.cpu_shares)
                .set_quota(self.cpu_quota)
                .set_period(self.cpu_period)
                .set_realtime_runtime(self.cpu_rt_runtime)
                .set_realtime_period(self.cpu_rt_period)
                .set_cpus(self.cpuset_cpus.clone())
                .set_mems(self.cpuset_mems.clone());
            r.set_cpu(Some(c));
        }
        if let Some(p) = self.pids_limit {
            let mut pids = LinuxPids::default();
            pids.set_limit(p);
            r.set_pids(Some(pids));
        }
        if let Some(w) = self.blkio_weight {
            let mut b = LinuxBlockIo::default();
            b.set_weight(Some(w));
            r.set_block_io(Some(b));
        }
        Ok(r)
    }
}

/// Set the fields `new` sets onto `old` (serde_json objects merged key by
/// key, one level into each resource section), and return what to apply:
/// every section `new` touches, whole, so that conversions needing two
/// fields (v2 swap = swap - limit) see both.
fn merge(old: &LinuxResources, new: &LinuxResources) -> Result<(LinuxResources, LinuxResources)> {
    let to_value = |r: &LinuxResources| {
        serde_json::to_value(r).map_err(|e| Error::Invalid(format!("linux.resources: {e}")))
    };
    let (mut merged, new) = (to_value(old)?, to_value(new)?);
    let mut touched = serde_json::Map::new();
    let (Some(m), Some(n)) = (merged.as_object_mut(), new.as_object()) else {
        return Err(Error::Invalid("linux.resources: not an object".into()));
    };
    for (k, v) in n {
        if v.is_null() {
            continue;
        }
        let slot = m.entry(k.clone()).or_insert(serde_json::Value::Null);
        match (slot.as_object_mut(), v.as_object()) {
            (Some(dst), Some(src)) => {
                for (f, x) in src.iter().filter(|(_, x)| !x.is_null()) {
                    dst.insert(f.clone(), x.clone());
                }
            }
            _ => *slot = v.clone(),
        }
        touched.insert(k.clone(), slot.clone());
    }
    let from = |v: serde_json::Value| {
        serde_json::from_value(v).map_err(|e| Error::Invalid(format!("linux.resources: {e}")))
    };
    Ok((from(merged)?, from(serde_json::Value::Object(touched))?))
}

/// Apply new limits to a created, running or paused container, and record
/// them in the stored config so that later reads agree.
pub fn update(root: &Path, id: &str, o: &UpdateOpts) -> Result<()> {
    let mut new = o.to_resources()?;
    // As runc: an unlimited memory limit without a swap value lifts the
    // swap limit too, else the old memory+swap cap would still hold.
    if let Some(mut m) = *new.memory() {
        if m.limit() == Some(-1) && m.swap().is_none() {
            m.set_swap(Some(-1));
            new.set_memory(Some(m));
        }
    }
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status == Status::Stopped {
        return Err(Error::BadStatus {
            op: "cannot update",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    let mut spec = dir.load_config()?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let old = linux.resources().clone().unwrap_or_default();
    // Device rules are fixed at create, as in runc (which ignores them
    // here). containerd's CRI sends the container's whole resources back,
    // rules included, so unchanged rules are fine; changed ones an error.
    let same = |d: &Option<Vec<_>>| d.as_deref().unwrap_or_default().to_vec();
    if new.devices().is_some() && same(new.devices()) != same(old.devices()) {
        return Err(Error::Invalid(
            "linux.resources.devices: device rules cannot be updated".into(),
        ));
    }
    new.set_devices(None);
    let (merged, apply) = merge(&old, &new)?;
    st.need_cgroup("update")?;
    st.cgroup.update(&apply)?;
    linux.set_resources(Some(merged));
    spec.set_linux(Some(linux));
    let raw = serde_json::to_vec(&spec).map_err(|e| Error::Invalid(e.to_string()))?;
    dir.save_config(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_runc() {
        for (s, v) in [
            ("1024", 1024),
            ("512k", 512 << 10),
            ("64m", 64 << 20),
            ("64MB", 64 << 20),
            ("1g", 1 << 30),
            ("1.5k", 1536),
            ("2GiB", 2 << 30),
            ("-1", -1),
        ] {
            assert_eq!(parse_size("memory", s).unwrap(), v, "{s}");
        }
        for bad in ["", "m", "12x", "-2", "1e3"] {
            let e = parse_size("memory", bad).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid configuration: --memory: invalid size"),
                "{e}"
            );
        }
    }

    #[test]
    fn merge_keeps_old_fields_and_applies_whole_sections() {
        let old: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}}"#,
        )
        .unwrap();
        let new: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 150}}"#).unwrap();
        let (merged, apply) = merge(&old, &new).unwrap();
        let m = merged.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(150), Some(200)));
        assert_eq!(merged.pids().as_ref().unwrap().limit(), 5);
        assert!(apply.pids().is_none());
        assert_eq!(apply.memory().as_ref().unwrap().swap(), Some(200));
    }

    #[test]
    fn ps_filter_keeps_header_and_own_rows() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 420 1 x\n";
        assert_eq!(
            filter_ps(text, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter_ps("A B\n1 2\n", &[1]).is_err());
    }
}
