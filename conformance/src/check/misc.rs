//! linux.personality, linux.timeOffsets, and a SKIP naming each process/linux
//! key this checker has no check for, so nothing goes silently unchecked.

use serde_json::Value;

use conformance::json::{at, i64_at, str_at};

use crate::{Ctx, T};

const PROCESS_KEYS: &[&str] = &[
    "terminal",
    "consoleSize",
    "user",
    "args",
    "env",
    "cwd",
    "capabilities",
    "rlimits",
    "noNewPrivileges",
    "apparmorProfile",
    "oomScoreAdj",
    "selinuxLabel",
    "ioPriority",
    "scheduler",
    "execCPUAffinity",
];
const LINUX_KEYS: &[&str] = &[
    "namespaces",
    "uidMappings",
    "gidMappings",
    "devices",
    "cgroupsPath",
    "resources",
    "rootfsPropagation",
    "seccomp",
    "sysctl",
    "maskedPaths",
    "readonlyPaths",
    "personality",
    "timeOffsets",
];

fn unchecked(t: &mut T, section: &str, v: Option<&Value>, known: &[&str]) {
    let Some(obj) = v.and_then(Value::as_object) else {
        return;
    };
    for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        t.skip(format!("{section}.{k}"), "no check for this key");
    }
}

pub fn check(cx: &Ctx, t: &mut T) {
    if let Some(p) = str_at(&cx.cfg, "linux.personality.domain") {
        let want = match p {
            "LINUX" => 0,
            "LINUX32" => 8,
            other => return t.error("linux.personality", format!("unknown domain {other}")),
        };
        // SAFETY: 0xffffffff only queries the persona.
        let got = unsafe { libc::personality(0xffff_ffff) } & 0xff;
        t.eq("linux.personality.domain", want, got);
    }
    if let Some(offs) = at(&cx.cfg, "linux.timeOffsets").and_then(Value::as_object) {
        let text = std::fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
        for (clock, o) in offs {
            let want = format!(
                "{} {}",
                i64_at(o, "secs").unwrap_or(0),
                i64_at(o, "nanosecs").unwrap_or(0)
            );
            let got = text.lines().find_map(|l| {
                l.strip_prefix(clock.as_str())
                    .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            });
            t.eq(format!("linux.timeOffsets.{clock}"), Some(want), got);
        }
    }
    unchecked(t, "process", at(&cx.cfg, "process"), PROCESS_KEYS);
    unchecked(t, "linux", at(&cx.cfg, "linux"), LINUX_KEYS);
}
