//! Properties an older systemd does not know. StartTransientUnit refuses a
//! whole unit for one unknown property, so, as runc does, those are left
//! out when the running systemd predates them; the cgroup files berth
//! writes after the unit starts still carry their values.

use super::props::Prop;

/// Each property the driver may set that came after systemd 236, with the
/// version that brought it (systemd's NEWS; runc gates the same ones).
const SINCE: &[(&str, u32)] = &[
    ("CPUQuotaPeriodUSec", 242),
    ("AllowedCPUs", 244),
    ("AllowedMemoryNodes", 244),
];

/// Whether `props` hold one that some systemd does not know: only then is
/// the version asked for (one more D-Bus call).
pub fn matters(props: &[Prop]) -> bool {
    props.iter().any(|(n, _)| SINCE.iter().any(|(s, _)| s == n))
}

/// The major version in the Manager's Version property: "252.39-1~deb12u2"
/// and "v245" give 252 and 245.
pub fn parse(v: &str) -> Option<u32> {
    let v = v.trim().trim_start_matches('v');
    let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    v[..end].parse().ok()
}

/// Drops what systemd `version` does not know; returns the names dropped.
pub fn gate(props: &mut Vec<Prop>, version: u32) -> Vec<String> {
    let mut dropped = Vec::new();
    props.retain(|(n, _)| {
        let old = SINCE.iter().any(|(s, since)| s == n && version < *since);
        if old {
            dropped.push(n.clone());
        }
        !old
    });
    dropped
}

#[cfg(test)]
mod tests {
    use super::super::props::Value;
    use super::*;

    fn props() -> Vec<Prop> {
        vec![
            ("MemoryMax".into(), Value::U64(1)),
            ("CPUQuotaPeriodUSec".into(), Value::U64(100_000)),
            ("AllowedCPUs".into(), Value::Bytes(vec![1])),
        ]
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse("252.39-1~deb12u2"), Some(252));
        assert_eq!(parse("v245"), Some(245));
        assert_eq!(parse("239"), Some(239));
        assert_eq!(parse("unknown"), None);
    }

    #[test]
    fn older_systemd_loses_only_newer_properties() {
        let mut p = props();
        assert!(matters(&p));
        assert_eq!(gate(&mut p, 243), ["AllowedCPUs"]);
        assert_eq!(p.len(), 2);
        let mut p = props();
        assert_eq!(gate(&mut p, 239), ["CPUQuotaPeriodUSec", "AllowedCPUs"]);
        assert_eq!(p, [("MemoryMax".to_string(), Value::U64(1))]);
        let mut p = props();
        assert!(gate(&mut p, 244).is_empty());
        assert_eq!(p.len(), 3);
        assert!(!matters(&p[..1]));
    }
}
