//! linux.devices, the default devices, /dev/ptmx and the /dev symlinks, and
//! the device cgroup seen by opening: every device node in /dev that the
//! rules deny must refuse to open with EPERM, and the default ones must open.

use serde_json::Value;

use conformance::json::{arr, bool_at, i64_at, str_at, u64_at};

use crate::{sys, Ctx, T};

const DEFAULT: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: [(&str, &str); 4] = [
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFCHR => "c",
        libc::S_IFBLK => "b",
        libc::S_IFIFO => "p",
        libc::S_IFLNK => "symlink",
        libc::S_IFDIR => "dir",
        _ => "other",
    }
}

fn node(t: &mut T, path: &str, ty: &str, major: u32, minor: u32, what: &str) -> Option<libc::stat> {
    let st = match sys::lstat(path) {
        Ok(st) => st,
        Err(e) => {
            t.error(format!("{what} {path} exists"), e);
            return None;
        }
    };
    // "u" (unbuffered char) is a char device on disk.
    let ty = if ty == "u" { "c" } else { ty };
    t.eq(format!("{what} {path}: type"), ty, kind(st.st_mode));
    if ty != "p" {
        let got = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        t.eq(format!("{what} {path}: major:minor"), (major, minor), got);
    }
    Some(st)
}

fn configured(t: &mut T, d: &Value) {
    let path = str_at(d, "path").unwrap_or("?");
    let ty = str_at(d, "type").unwrap_or("?");
    let num = |k| i64_at(d, k).unwrap_or(0) as u32;
    let Some(st) = node(t, path, ty, num("major"), num("minor"), "linux.devices") else {
        return;
    };
    if let Some(m) = u64_at(d, "fileMode") {
        t.eq(
            format!("linux.devices {path}: fileMode"),
            format!("{:o}", m & 0o7777),
            format!("{:o}", st.st_mode & 0o7777),
        );
    }
    if let Some(u) = u64_at(d, "uid") {
        t.eq(format!("linux.devices {path}: uid"), u as u32, st.st_uid);
    }
    if let Some(g) = u64_at(d, "gid") {
        t.eq(format!("linux.devices {path}: gid"), g as u32, st.st_gid);
    }
}

/// What runc appends after the config's rules: mknod of anything, the
/// default nodes, ptys and /dev/ptmx (type, major, minor; None for any).
const DEFAULT_RULES: [(char, Option<u32>, Option<u32>, &str); 10] = [
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(136), None, "rwm"),
];

/// A device rule: allow, type ('a', 'c' or 'b'), major, minor (None: any), access.
type Rule = (bool, char, Option<u32>, Option<u32>, String);

/// Whether the device rules allow `access` ('r' or 'w') on a node: the
/// config's linux.resources.devices, then runc's defaults, then an allow
/// for each linux.devices entry; the last matching rule wins.
fn allowed(cx: &Ctx, kind: char, major: u32, minor: u32, access: char) -> bool {
    let num = |d: &Value, k: &str| i64_at(d, k).filter(|n| *n >= 0).map(|n| n as u32);
    let mut rules: Vec<Rule> = Vec::new();
    for d in arr(&cx.cfg, "linux.resources.devices") {
        let ty = str_at(d, "type")
            .and_then(|t| t.chars().next())
            .unwrap_or('a');
        let acc = str_at(d, "access").unwrap_or("rwm").to_string();
        let allow = bool_at(d, "allow");
        rules.push((allow, ty, num(d, "major"), num(d, "minor"), acc));
    }
    for (ty, ma, mi, acc) in DEFAULT_RULES {
        rules.push((true, ty, ma, mi, acc.into()));
    }
    for d in arr(&cx.cfg, "linux.devices") {
        let ty = match str_at(d, "type") {
            Some("b") => 'b',
            Some("p") => continue,
            _ => 'c',
        };
        rules.push((true, ty, num(d, "major"), num(d, "minor"), "rwm".into()));
    }
    let hit = |r: &Rule| {
        (r.1 == 'a' || r.1 == kind)
            && r.2.is_none_or(|m| m == major)
            && r.3.is_none_or(|m| m == minor)
            && r.4.contains(access)
    };
    rules.iter().rev().find(|r| hit(r)).is_some_and(|r| r.0)
}

/// Opens every device node directly under /dev: a denied one must fail
/// with EPERM (for writing first: reading some devices, /dev/kmsg, needs
/// a capability as well); the default nodes must open for reading.
fn access(cx: &Ctx, t: &mut T) {
    if arr(&cx.cfg, "linux.resources.devices").is_empty() {
        return;
    }
    let dir = match std::fs::read_dir("/dev") {
        Ok(d) => d,
        Err(e) => return t.error("device cgroup: list /dev", e),
    };
    let mut paths: Vec<String> = dir
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    paths.sort();
    for path in paths {
        let Ok(st) = sys::lstat(&path) else { continue };
        let kind = match kind(st.st_mode) {
            "c" => 'c',
            "b" => 'b',
            _ => continue,
        };
        let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        let node = format!("{path} ({kind} {major}:{minor})");
        let flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let denied = [('w', libc::O_WRONLY), ('r', libc::O_RDONLY)]
            .into_iter()
            .find(|(a, _)| !allowed(cx, kind, major, minor, *a));
        if let Some((a, mode)) = denied {
            let got = sys::try_open(&path, mode | flags);
            t.eq(
                format!("device cgroup: opening {node} for '{a}' is denied (EPERM)"),
                Err(libc::EPERM),
                got,
            );
        } else if DEFAULT[..5].iter().any(|(p, _, _)| *p == path) {
            let got = sys::try_open(&path, libc::O_RDONLY | flags);
            t.eq(format!("device cgroup: {node} opens"), Ok(()), got);
        }
    }
}

pub fn check(cx: &Ctx, t: &mut T) {
    access(cx, t);
    for d in arr(&cx.cfg, "linux.devices") {
        configured(t, d);
    }
    for (path, major, minor) in DEFAULT {
        node(t, path, "c", major, minor, "default device");
    }
    match std::fs::read_link("/dev/ptmx") {
        Ok(target) => t.eq(
            "/dev/ptmx links to pts/ptmx",
            "pts/ptmx",
            &target.to_string_lossy(),
        ),
        Err(_) => node(t, "/dev/ptmx", "c", 5, 2, "default device").is_some(),
    };
    if bool_at(&cx.cfg, "process.terminal") {
        // The console is a bind of the pty slave, not a 5:1 node.
        let st = sys::lstat("/dev/console");
        t.ok(
            st.as_ref().is_ok_and(|s| kind(s.st_mode) == "c"),
            "/dev/console is a char device",
            format!("{:?}", st.err()),
        );
    }
    for (link, want) in LINKS {
        let got = std::fs::read_link(link).map(|p| p.to_string_lossy().into_owned());
        t.eq(
            format!("default symlink {link}"),
            Ok(want.to_string()),
            got.map_err(|e| e.to_string()),
        );
    }
}
