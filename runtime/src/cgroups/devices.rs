//! Device cgroup rules: the config's rules, then the devices every container
//! gets, then the configured `linux.devices`, checked and normalised once for
//! both the v1 files and the v2 eBPF program.

use std::borrow::Cow;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// Access bits, numerically equal to the kernel's BPF_DEVCG_ACC_* values.
pub(super) const MKNOD: u8 = 1;
pub(super) const READ: u8 = 2;
pub(super) const WRITE: u8 = 4;
const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    All,
    Char,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// None is the wildcard.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
    /// Where the rule came from, for error messages.
    pub field: Cow<'static, str>,
}

const fn allow(kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
    Rule {
        allow: true,
        kind,
        major,
        minor,
        access,
        field: Cow::Borrowed("default device rules"),
    }
}

/// What runc appends after the config's rules: mknod of anything (opening
/// still needs a rule), the standard /dev nodes, ptys and /dev/ptmx.
const DEFAULTS: [Rule; 10] = [
    allow(Kind::Char, None, None, MKNOD),
    allow(Kind::Block, None, None, MKNOD),
    allow(Kind::Char, Some(1), Some(3), ALL_ACCESS), // null
    allow(Kind::Char, Some(1), Some(5), ALL_ACCESS), // zero
    allow(Kind::Char, Some(1), Some(7), ALL_ACCESS), // full
    allow(Kind::Char, Some(1), Some(8), ALL_ACCESS), // random
    allow(Kind::Char, Some(1), Some(9), ALL_ACCESS), // urandom
    allow(Kind::Char, Some(5), Some(0), ALL_ACCESS), // tty
    allow(Kind::Char, Some(5), Some(2), ALL_ACCESS), // ptmx
    allow(Kind::Char, Some(136), None, ALL_ACCESS),  // pts/*
];

fn number(v: Option<i64>, field: &str, what: &str) -> Result<Option<u32>, CgroupError> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| CgroupError::Invalid {
                field: format!("{field}.{what}"),
                reason: format!("{n} is not a device number"),
            }),
    }
}

/// A real device's number: no wildcard.
fn device_number(n: i64, field: &str, what: &str) -> Result<u32, CgroupError> {
    u32::try_from(n).map_err(|_| CgroupError::Invalid {
        field: format!("{field}.{what}"),
        reason: format!("{n} is not a device number"),
    })
}

fn parse_access(access: Option<&str>, field: &str) -> Result<u8, CgroupError> {
    let Some(s) = access else {
        return Ok(ALL_ACCESS);
    };
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => 0xff,
        };
    }
    if bits == 0 || bits > ALL_ACCESS {
        return Err(CgroupError::Invalid {
            field: format!("{field}.access"),
            reason: format!("{s:?} is not a combination of r, w and m"),
        });
    }
    Ok(bits)
}

fn config_rule(i: usize, d: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
    let field = format!("linux.resources.devices[{i}]");
    let kind = match d.typ() {
        None | Some(LinuxDeviceType::A) => Kind::All,
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => Kind::Char,
        Some(LinuxDeviceType::B) => Kind::Block,
        Some(LinuxDeviceType::P) => {
            return Err(CgroupError::Invalid {
                field: format!("{field}.type"),
                reason: "a FIFO is not a device the device cgroup controls".into(),
            })
        }
    };
    Ok(Rule {
        allow: d.allow(),
        kind,
        major: number(d.major(), &field, "major")?,
        minor: number(d.minor(), &field, "minor")?,
        access: parse_access(d.access().as_deref(), &field)?,
        field: field.into(),
    })
}

/// All rules in the order they take effect (a later rule overrides an
/// earlier one).
pub(super) fn rules(
    configured: Option<&[LinuxDeviceCgroup]>,
    devices: Option<&[LinuxDevice]>,
) -> Result<Vec<Rule>, CgroupError> {
    let configured = configured.unwrap_or_default();
    let devices = devices.unwrap_or_default();
    let mut out = Vec::with_capacity(configured.len() + DEFAULTS.len() + devices.len());
    for (i, d) in configured.iter().enumerate() {
        out.push(config_rule(i, d)?);
    }
    out.extend(DEFAULTS.iter().cloned());
    for (i, d) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::P => continue, // FIFOs are not subject to the controller
            LinuxDeviceType::A => {
                return Err(CgroupError::Invalid {
                    field: format!("{field}.type"),
                    reason: "\"a\" is not a device type".into(),
                })
            }
        };
        out.push(Rule {
            allow: true,
            kind,
            major: Some(device_number(d.major(), &field, "major")?),
            minor: Some(device_number(d.minor(), &field, "minor")?),
            access: ALL_ACCESS,
            field: field.into(),
        });
    }
    Ok(out)
}

/// The v1 devices.allow/devices.deny lines for one rule. The kernel reads
/// any line starting with "a" as "all devices, all access", so a narrower
/// rule of type "a" becomes a char and a block line.
pub(super) fn v1_lines(r: &Rule) -> Vec<String> {
    if r.kind == Kind::All && r.major.is_none() && r.minor.is_none() && r.access == ALL_ACCESS {
        return vec!["a".into()];
    }
    let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    let mut access = String::with_capacity(3);
    for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
        if r.access & bit != 0 {
            access.push(c);
        }
    }
    let line = |t: char| format!("{t} {}:{} {access}", num(r.major), num(r.minor));
    match r.kind {
        Kind::Char => vec![line('c')],
        Kind::Block => vec![line('b')],
        Kind::All => vec![line('c'), line('b')],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn order_and_v1_lines() {
        let c = cfg(r#"[{"allow":false,"access":"rwm"},
                        {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},
                        {"allow":true,"type":"b","major":8,"minor":20,"access":"rw"},
                        {"allow":false,"type":"a","major":-1,"minor":3,"access":"mw"}]"#);
        let d: Vec<LinuxDevice> = serde_json::from_str(
            r#"[{"path":"/dev/fuse","type":"c","major":10,"minor":229},
                                     {"path":"/dev/p","type":"p","major":0,"minor":0}]"#,
        )
        .unwrap();
        let r = rules(Some(&c), Some(&d)).unwrap();
        assert_eq!(r.len(), 4 + DEFAULTS.len() + 1);
        let lines: Vec<Vec<String>> = r.iter().map(v1_lines).collect();
        assert_eq!(lines[0], ["a"]);
        assert_eq!(lines[1], ["c 10:229 rwm"]);
        assert_eq!(lines[2], ["b 8:20 rw"]);
        assert_eq!(lines[3], ["c *:3 wm", "b *:3 wm"]);
        assert!(!r[0].allow && !r[3].allow);
        assert_eq!(lines[4], ["c *:* m"]);
        assert_eq!(lines[14], ["c 10:229 rwm"]);
        assert_eq!(r[14].field, "linux.devices[0]");
    }

    #[test]
    fn bad_rules_name_the_field() {
        for (json, field) in [
            (
                r#"[{"allow":true,"type":"c","major":1,"minor":3,"access":"rx"}]"#,
                "[0].access",
            ),
            (
                r#"[{"allow":true,"type":"c","major":1,"minor":3,"access":""}]"#,
                "[0].access",
            ),
            (
                r#"[{"allow":true},{"allow":true,"type":"c","major":-5}]"#,
                "[1].major",
            ),
            (r#"[{"allow":true,"type":"p"}]"#, "[0].type"),
        ] {
            let e = rules(Some(&cfg(json)), None).unwrap_err().to_string();
            assert!(
                e.starts_with("linux.resources.devices") && e.contains(field),
                "{e}"
            );
        }
    }
}
