//! Unit properties: the ones berth sets on every unit, the mapping of the
//! cgroup file writes that `plan` computed from `linux.resources` onto
//! systemd's resource-control properties (so both carry the same values,
//! with runc's conversions), and `org.systemd.property.*` annotations.
//! Pure functions; the D-Bus encoding is in `bus`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::super::devices::{Kind, Rule, MKNOD, READ, WRITE};
use super::super::resources::Write;
use super::super::CgroupError;

/// A D-Bus value of one of the types systemd's properties use (serde: the
/// D-Bus helper's requests, see `wire`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Bool(bool),
    Byte(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    /// `ay`: AllowedCPUs, AllowedMemoryNodes.
    Bytes(Vec<u8>),
    /// `au`: PIDs.
    U32s(Vec<u32>),
    /// `as`
    Strs(Vec<String>),
    /// `a(ss)`: DeviceAllow.
    Pairs(Vec<(String, String)>),
}

/// One `(sv)` of StartTransientUnit / SetUnitProperties.
pub type Prop = (String, Value);

fn prop(name: &str, v: Value) -> Prop {
    (name.to_owned(), v)
}

/// systemd's "infinity" for limits and quotas.
const INFINITY: u64 = u64::MAX;
/// The kernel's default CFS period, used when only a quota is given.
const DEFAULT_PERIOD_US: u64 = 100_000;

/// Properties of a new unit: description, placement, delegation, the init
/// pid, and accounting on for every controller, as runc sets them.
pub fn base(unit: &str, slice: &str, is_slice: bool, pid: Option<i32>, v2: bool) -> Vec<Prop> {
    let mut p = vec![prop(
        "Description",
        Value::Str(format!("berth container {unit}")),
    )];
    if is_slice {
        p.push(prop("Wants", Value::Strs(vec![slice.to_owned()])));
    } else {
        p.push(prop("Slice", Value::Str(slice.to_owned())));
        p.push(prop("Delegate", Value::Bool(true)));
    }
    if let Some(pid) = pid {
        p.push(prop("PIDs", Value::U32s(vec![pid as u32])));
    }
    p.push(prop("MemoryAccounting", Value::Bool(true)));
    p.push(prop("CPUAccounting", Value::Bool(true)));
    let io = if v2 {
        "IOAccounting"
    } else {
        "BlockIOAccounting"
    };
    p.push(prop(io, Value::Bool(true)));
    p.push(prop("TasksAccounting", Value::Bool(true)));
    p.push(prop("DefaultDependencies", Value::Bool(false)));
    p
}

/// A file value as a property: the plan writes any negative v1 limit as
/// it came (the kernel takes -1 and refuses the others), and it means no
/// limit, as on v2.
fn limit(v: &str) -> Option<u64> {
    match v.trim() {
        "max" => Some(INFINITY),
        s if s.starts_with('-') => s.parse::<i64>().ok().map(|_| INFINITY),
        s => s.parse().ok(),
    }
}

/// The properties equivalent to `writes`, in order. A write with no
/// property (cpu.idle, io.max, hugetlb, ...) is left to the cgroup files.
/// `cpu.max` is rounded up as runc does (systemd keeps a quota per second
/// in 10 ms steps), and the write is changed to the rounded value so that
/// the file and the unit agree.
pub fn from_writes(writes: &mut [Write], v2: bool) -> Result<Vec<Prop>, CgroupError> {
    let mut out = Vec::new();
    for x in writes.iter_mut() {
        let invalid = |reason: String| CgroupError::Invalid {
            field: x.field.clone().into_owned(),
            reason,
        };
        let num = |name: &str, out: &mut Vec<Prop>| -> Result<(), CgroupError> {
            let n = limit(&x.value).ok_or_else(|| invalid(format!("not a number: {}", x.value)))?;
            out.push(prop(name, Value::U64(n)));
            Ok(())
        };
        match (&*x.file, v2) {
            ("memory.max", true) => num("MemoryMax", &mut out)?,
            ("memory.low", true) => num("MemoryLow", &mut out)?,
            ("memory.high", true) => num("MemoryHigh", &mut out)?,
            ("memory.min", true) => num("MemoryMin", &mut out)?,
            ("memory.swap.max", true) => num("MemorySwapMax", &mut out)?,
            ("cpu.weight", true) => num("CPUWeight", &mut out)?,
            ("io.weight", true) => {
                // "default N" or "N"; per-device lines stay in the file.
                let v = x.value.trim().trim_start_matches("default ").trim();
                if let Ok(n) = v.parse::<u64>() {
                    out.push(prop("IOWeight", Value::U64(n)));
                }
            }
            ("pids.max", _) => {
                // systemd does not accept TasksMax=0.
                let n = limit(&x.value)
                    .ok_or_else(|| invalid(format!("not a number: {}", x.value)))?
                    .max(1);
                out.push(prop("TasksMax", Value::U64(n)));
            }
            ("cpu.max", true) => {
                let (quota, period) = parse_cpu_max(&x.value).ok_or_else(|| {
                    invalid(format!("cpu.max wants \"quota [period]\": {}", x.value))
                })?;
                let (props, rounded) = cpu_quota(quota, period);
                out.extend(props);
                if let Some(q) = rounded {
                    x.value = match period {
                        Some(p) => format!("{q} {p}"),
                        None => q.to_string(),
                    };
                }
            }
            ("cpuset.cpus", _) => {
                let bits = range_to_bits(&x.value).map_err(|e| invalid(e.into()))?;
                out.push(prop("AllowedCPUs", Value::Bytes(bits)));
            }
            ("cpuset.mems", _) => {
                let bits = range_to_bits(&x.value).map_err(|e| invalid(e.into()))?;
                out.push(prop("AllowedMemoryNodes", Value::Bytes(bits)));
            }
            ("memory.limit_in_bytes", false) => num("MemoryLimit", &mut out)?,
            ("cpu.shares", false) => num("CPUShares", &mut out)?,
            ("blkio.weight", false) => num("BlockIOWeight", &mut out)?,
            _ => {}
        }
    }
    Ok(out)
}

/// DevicePolicy=strict and DeviceAllow= for an allow list, as runc sets
/// them, so that systemd's own device filter agrees with berth's. Only a
/// rule set that is a deny-all followed by allows can be said this way;
/// for any other (nothing denied, a deny list, a rule systemd cannot name
/// such as `c *:5`) no device property is set, and berth's own filter,
/// which is always attached, enforces the rules alone. (runc instead
/// drops what systemd cannot name, so systemd denies more than asked.)
pub fn devices(rules: &[Rule]) -> Vec<Prop> {
    let deny_all = |r: &Rule| {
        !r.allow
            && r.kind == Kind::All
            && r.major.is_none()
            && r.minor.is_none()
            && r.access == MKNOD | READ | WRITE
    };
    let Some(start) = rules.iter().rposition(deny_all) else {
        return Vec::new();
    };
    let mut allow = Vec::new();
    for r in &rules[start + 1..] {
        if !r.allow {
            return Vec::new();
        }
        let mut perms = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if r.access & bit != 0 {
                perms.push(c);
            }
        }
        let kinds: &[(&str, &str)] = match r.kind {
            Kind::Char => &[("char", "/dev/char")],
            Kind::Block => &[("block", "/dev/block")],
            Kind::All => &[("char", "/dev/char"), ("block", "/dev/block")],
        };
        for (group, dir) in kinds {
            let path = match (r.major, r.minor) {
                (Some(ma), Some(mi)) => format!("{dir}/{ma}:{mi}"),
                (Some(ma), None) => format!("{group}-{ma}"),
                (None, None) => format!("{group}-*"),
                (None, Some(_)) => return Vec::new(),
            };
            allow.push((path, perms.clone()));
        }
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        prop("DeviceAllow", Value::Pairs(allow)),
    ]
}

fn parse_cpu_max(v: &str) -> Option<(Option<u64>, Option<u64>)> {
    let mut f = v.split_whitespace();
    let quota = match f.next()? {
        "max" => None,
        q => Some(q.parse().ok()?),
    };
    let period = match f.next() {
        None => None,
        Some(p) => Some(p.parse().ok()?),
    };
    f.next().is_none().then_some((quota, period))
}

/// CPUQuotaPeriodUSec and CPUQuotaPerSecUSec for a quota and period in µs,
/// and the quota rounded up to what systemd will keep, if it differs.
pub fn cpu_quota(quota: Option<u64>, period: Option<u64>) -> (Vec<Prop>, Option<u64>) {
    let mut props = Vec::new();
    if let Some(p) = period {
        props.push(prop("CPUQuotaPeriodUSec", Value::U64(p)));
    }
    let mut rounded = None;
    let per_sec = match quota.filter(|&q| q > 0) {
        None => INFINITY,
        Some(q) => {
            let p = period.unwrap_or(DEFAULT_PERIOD_US);
            let mut per_sec = q.saturating_mul(1_000_000) / p;
            if !per_sec.is_multiple_of(10_000) {
                per_sec = (per_sec / 10_000 + 1) * 10_000;
                rounded = Some(per_sec * p / 1_000_000);
            }
            per_sec
        }
    };
    props.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
    (props, rounded)
}

/// A cpuset list ("0-2,7") as the little-endian bit mask systemd takes for
/// AllowedCPUs and AllowedMemoryNodes.
pub fn range_to_bits(list: &str) -> Result<Vec<u8>, &'static str> {
    let mut bits: Vec<u8> = Vec::new();
    let mut set = |i: usize| {
        if bits.len() <= i / 8 {
            bits.resize(i / 8 + 1, 0);
        }
        bits[i / 8] |= 1 << (i % 8);
    };
    const MAX: usize = 1 << 16;
    for r in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n < MAX)
                .ok_or("not a cpu or node list")
        };
        let (lo, hi) = match r.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(r)?, num(r)?),
        };
        if lo > hi {
            return Err("a range ends below its start");
        }
        (lo..=hi).for_each(&mut set);
    }
    if bits.is_empty() {
        return Err("an empty cpu or node list");
    }
    Ok(bits)
}

const ANNOTATION: &str = "org.systemd.property.";

/// `org.systemd.property.<Name>` annotations as unit properties, as runc
/// passes them: the value in GVariant text form (the common subset:
/// booleans, numbers with an optional type keyword, quoted strings, arrays
/// of strings), and a `...Sec` name turned into `...USec` with its value
/// in microseconds. Sorted by name so that the unit is reproducible.
pub fn from_annotations(a: &HashMap<String, String>) -> Result<Vec<Prop>, CgroupError> {
    let mut out = Vec::new();
    let mut keys: Vec<&String> = a.keys().filter(|k| k.starts_with(ANNOTATION)).collect();
    keys.sort();
    for key in keys {
        let err = |reason: String| CgroupError::Invalid {
            field: format!("annotations.{key:?}"),
            reason,
        };
        let mut name = key[ANNOTATION.len()..].to_owned();
        let ok_name = name.len() > 1
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric());
        if !ok_name {
            return Err(err("not a systemd property name".into()));
        }
        let mut value = parse_gvariant(&a[key]).map_err(|e| err(e.into()))?;
        let sec = name
            .strip_suffix("Sec")
            .filter(|s| s.ends_with(|c: char| c.is_ascii_lowercase()));
        if let Some(stem) = sec {
            name = format!("{stem}USec");
            value =
                to_usec(&value).ok_or_else(|| err("a ...Sec property needs a number".into()))?;
        }
        out.push((name, value));
    }
    Ok(out)
}

fn to_usec(v: &Value) -> Option<Value> {
    const M: u64 = 1_000_000;
    let us = match *v {
        Value::Byte(n) => u64::from(n) * M,
        Value::I16(n) => u64::try_from(n).ok()? * M,
        Value::U16(n) => u64::from(n) * M,
        Value::I32(n) => u64::try_from(n).ok()? * M,
        Value::U32(n) => u64::from(n) * M,
        Value::I64(n) => u64::try_from(n).ok()?.checked_mul(M)?,
        Value::U64(n) => n.checked_mul(M)?,
        Value::Double(d) if d >= 0.0 => (d * M as f64) as u64,
        _ => return None,
    };
    Some(Value::U64(us))
}

fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = s.strip_prefix(q)?.strip_suffix(q)?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            c if c == q => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// The GVariant text forms berth accepts (see `from_annotations`).
pub fn parse_gvariant(text: &str) -> Result<Value, &'static str> {
    let t = text.trim();
    if let Some(s) = unquote(t) {
        return Ok(Value::Str(s));
    }
    match t {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(items) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let items = items.trim();
        if items.is_empty() {
            return Ok(Value::Strs(Vec::new()));
        }
        return items
            .split(',')
            .map(|i| unquote(i.trim()).ok_or("only arrays of quoted strings are supported"))
            .collect::<Result<_, _>>()
            .map(Value::Strs);
    }
    let bad = "not a GVariant boolean, number, string or string array";
    let (kw, num) = t.split_once(char::is_whitespace).unwrap_or(("", t));
    let num = num.trim();
    // No property takes NaN or infinity, and JSON (the helper's requests)
    // has no word for them.
    let double = |s: &str| s.parse::<f64>().ok().filter(|d| d.is_finite()).ok_or(bad);
    let v = match kw {
        "" if num.contains(['.', 'e']) => Value::Double(double(num)?),
        "" | "int32" => Value::I32(num.parse().map_err(|_| bad)?),
        "byte" => Value::Byte(num.parse().map_err(|_| bad)?),
        "int16" => Value::I16(num.parse().map_err(|_| bad)?),
        "uint16" => Value::U16(num.parse().map_err(|_| bad)?),
        "uint32" => Value::U32(num.parse().map_err(|_| bad)?),
        "int64" => Value::I64(num.parse().map_err(|_| bad)?),
        "uint64" => Value::U64(num.parse().map_err(|_| bad)?),
        "double" => Value::Double(double(num)?),
        "boolean" => match num {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad),
        },
        "string" => Value::Str(unquote(num).ok_or(bad)?),
        _ => return Err(bad),
    };
    Ok(v)
}

#[cfg(test)]
#[path = "props_tests.rs"]
mod tests;
