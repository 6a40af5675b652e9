//! Host facts and the timestamp recorded with every result.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::results::Host;

pub fn host(cgroup_layout: String, unified_detached: bool) -> Host {
    let u = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        u.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Host {
        hostname: field(|u| u.nodename()),
        kernel: field(|u| u.release()),
        arch: field(|u| u.machine()),
        cpu: value_of(&cpuinfo, "model name").unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total_kib: value_of(&meminfo, "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0),
        cgroup_layout,
        unified_detached,
    }
}

/// The value of the first `key: value` line (the /proc text formats).
fn value_of(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

pub fn now() -> (u64, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs, rfc3339(secs))
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (proleptic Gregorian
/// calendar; days-to-date by the era arithmetic of 400-year cycles).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn proc_key_values() {
        let t = "processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n";
        assert_eq!(
            value_of(t, "model name").as_deref(),
            Some("Some CPU @ 2GHz")
        );
        assert_eq!(value_of(t, "absent"), None);
    }
}
