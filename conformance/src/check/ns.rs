//! linux.namespaces (new, joined by path, inherited) and the user namespace's id maps.

use serde_json::Value;

use conformance::json::{arr, str_at, u64_at};

use crate::{sys, Ctx, T};

/// Config type -> /proc/self/ns entry.
pub const TYPES: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

pub fn check(cx: &Ctx, t: &mut T) {
    let listed = arr(&cx.cfg, "linux.namespaces");
    for (ty, proc_name) in TYPES {
        let mine = match sys::stat_ino(&format!("/proc/self/ns/{proc_name}")) {
            Ok(i) => i,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // kernel lacks it
            Err(e) => {
                t.error(format!("namespace {ty}"), e);
                continue;
            }
        };
        let host = u64_at(&cx.host, &format!("ns.{proc_name}"));
        let entry = listed.iter().find(|n| str_at(n, "type") == Some(ty));
        match (entry, host) {
            (Some(n), _) if str_at(n, "path").is_some() => {
                let want = u64_at(&cx.host, &format!("nspath.{proc_name}"));
                t.eq(
                    format!("namespace {ty} joined from its path"),
                    want,
                    Some(mine),
                );
            }
            (Some(_), Some(h)) => {
                t.ok(
                    mine != h,
                    format!("namespace {ty} is new"),
                    format!("inode {mine} is the host's"),
                );
            }
            (None, Some(h)) => {
                t.eq(format!("namespace {ty} inherited (not listed)"), h, mine);
            }
            (_, None) => t.skip(format!("namespace {ty}"), "driver gave no host inode"),
        }
    }
    let new_pid = listed
        .iter()
        .any(|n| str_at(n, "type") == Some("pid") && str_at(n, "path").is_none());
    if new_pid {
        t.eq(
            "new pid namespace: the process is pid 1",
            1,
            std::process::id(),
        );
    }
    if listed.iter().any(|n| str_at(n, "type") == Some("user")) {
        id_map(cx, t, "uid");
        id_map(cx, t, "gid");
    }
}

/// `containerID hostID size` triples, as the spec lists them and uid_map prints them.
fn triples(list: &[Value]) -> Vec<(u64, u64, u64)> {
    let g = |m: &Value, k: &str| u64_at(m, k).unwrap_or(u64::MAX);
    list.iter()
        .map(|m| (g(m, "containerID"), g(m, "hostID"), g(m, "size")))
        .collect()
}

fn id_map(cx: &Ctx, t: &mut T, kind: &str) {
    let want = triples(arr(&cx.cfg, &format!("linux.{kind}Mappings")));
    let desc = format!("linux.{kind}Mappings is /proc/self/{kind}_map");
    let Ok(text) = std::fs::read_to_string(format!("/proc/self/{kind}_map")) else {
        return t.error(desc, "unreadable");
    };
    let got: Vec<(u64, u64, u64)> = text
        .lines()
        .filter_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (v.len() == 3).then(|| (v[0], v[1], v[2]))
        })
        .collect();
    t.eq(desc, want, got);
}
