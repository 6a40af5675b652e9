//! `update`'s flags, turned into the partial LinuxResources the library
//! applies.

use std::io::Read;

use berth::api::LinuxResources;
use berth::{Error, Result};
use clap::Args;
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids};

// runc's `update` flags; sizes take k/m/g suffixes. runc's Intel RDT flags
// (--l3-cache-schema, --mem-bw-schema) are not offered: berth has no Intel RDT.
// (Not a doc comment: a deferred subcommand would take it as its about text
// instead of the command's own.)
#[derive(Args, Debug)]
pub(super) struct UpdateArgs {
    /// A LinuxResources JSON file, or "-" for stdin; other flags are ignored.
    #[arg(short, long, value_name = "FILE")]
    resources: Option<String>,
    /// Memory limit (bytes, k/m/g suffixes; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(
        long = "memory-reservation",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    memory_reservation: Option<String>,
    /// Memory plus swap; -1 for unlimited.
    #[arg(long = "memory-swap", allow_hyphen_values = true, value_name = "SIZE")]
    memory_swap: Option<String>,
    /// Kernel memory limit (cgroup v1 only; deprecated by the kernel).
    #[arg(
        long = "kernel-memory",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (cgroup v1 only).
    #[arg(
        long = "kernel-memory-tcp",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period; -1 for none.
    #[arg(long = "cpu-quota", allow_hyphen_values = true, value_name = "USEC")]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period", value_name = "USEC")]
    cpu_period: Option<u64>,
    /// Realtime runtime in microseconds per period (cgroup v1 only).
    #[arg(
        long = "cpu-rt-runtime",
        allow_hyphen_values = true,
        value_name = "USEC"
    )]
    cpu_rt_runtime: Option<i64>,
    /// Realtime period in microseconds (cgroup v1 only).
    #[arg(long = "cpu-rt-period", value_name = "USEC")]
    cpu_rt_period: Option<u64>,
    /// CPUs allowed, e.g. 0-3,6.
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    cpuset_cpus: Option<String>,
    /// Memory nodes allowed, e.g. 0-1.
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    cpuset_mems: Option<String>,
    /// Maximum number of tasks; -1 or 0 for unlimited.
    #[arg(long = "pids-limit", allow_hyphen_values = true, value_name = "N")]
    pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000 (needs a disk scheduler with weights).
    #[arg(long = "blkio-weight", value_name = "N")]
    blkio_weight: Option<u16>,
    /// The container's id.
    #[arg(value_name = "CONTAINER-ID")]
    pub(super) id: String,
}

/// docker/go-units' RAMInBytes, which runc uses: a number with an optional
/// binary unit (k, m, g, t, p; an optional "b" or "ib" after it).
pub(super) fn parse_size(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let bad = || Error::option(format!("--{flag}"), "", format!("invalid size {v:?}"));
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

impl UpdateArgs {
    /// Whether the resources come from a file or stdin (`-r`).
    #[cfg(fuzzing)]
    #[allow(dead_code)] // the fuzz target's
    pub(super) fn reads_input(&self) -> bool {
        self.resources.is_some()
    }

    /// The requested change as a partial LinuxResources.
    pub(super) fn to_resources(&self) -> Result<LinuxResources> {
        if let Some(src) = &self.resources {
            let mut data = Vec::new();
            if src == "-" {
                std::io::stdin()
                    .read_to_end(&mut data)
                    .map_err(|source| Error::Io {
                        ctx: "read resources from stdin".into(),
                        source,
                    })?;
            } else {
                data = std::fs::read(src).map_err(|source| Error::Io {
                    ctx: format!("read {src}"),
                    source,
                })?;
            }
            return serde_json::from_slice(&data)
                .map_err(|e| Error::option("--resources", src.to_string(), e.to_string()));
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
        let cpu_set = self.cpu_share.is_some()
            || self.cpu_quota.is_some()
            || self.cpu_period.is_some()
            || self.cpu_rt_runtime.is_some()
            || self.cpu_rt_period.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some();
        if cpu_set {
            let mut c = LinuxCpu::default();
            c.set_shares(self.cpu_share)
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
}
