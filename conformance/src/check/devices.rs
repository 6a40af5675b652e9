//! linux.devices, the default devices, /dev/ptmx and the /dev symlinks.

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

pub fn check(cx: &Ctx, t: &mut T) {
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
