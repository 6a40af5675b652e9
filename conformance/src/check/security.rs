//! linux.seccomp (mode and per-syscall errno), process.apparmorProfile, process.selinuxLabel.

use conformance::json::{arr, at, str_at, strs, u64_at};

use crate::{sys, Ctx, T};

/// Calls a syscall that is safe to make with dummy arguments; its errno or 0.
fn probe(name: &str) -> Option<i32> {
    let mut buf = [0u8; 512];
    // SAFETY: each call gets a buffer big enough for what it writes, or no pointer.
    let r = unsafe {
        match name {
            "getcwd" => libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()),
            "uname" => libc::syscall(libc::SYS_uname, buf.as_mut_ptr()),
            "getppid" => libc::syscall(libc::SYS_getppid),
            "getsid" => libc::syscall(libc::SYS_getsid, 0),
            "getpgid" => libc::syscall(libc::SYS_getpgid, 0),
            "sched_yield" => libc::syscall(libc::SYS_sched_yield),
            _ => return None,
        }
    };
    Some(if r < 0 { sys::errno() } else { 0 })
}

fn seccomp(cx: &Ctx, t: &mut T) {
    let Some(s) = at(&cx.cfg, "linux.seccomp") else {
        t.skip("linux.seccomp", "not set");
        return;
    };
    t.eq(
        "linux.seccomp: Seccomp filter mode (2)",
        Some("2"),
        cx.status("Seccomp"),
    );
    for rule in arr(s, "syscalls") {
        if str_at(rule, "action") != Some("SCMP_ACT_ERRNO") || !arr(rule, "args").is_empty() {
            continue;
        }
        // The spec's default errnoRet is EPERM.
        let want = u64_at(rule, "errnoRet").unwrap_or(libc::EPERM as u64) as i32;
        for name in strs(rule.get("names")) {
            match probe(&name) {
                Some(got) => {
                    t.eq(
                        format!("linux.seccomp: {name} fails with errno {want}"),
                        want,
                        got,
                    );
                }
                None => t.skip(
                    format!("linux.seccomp: {name}"),
                    "no safe probe for this syscall",
                ),
            }
        }
    }
}

/// The LSM's view of our label: the stacked-LSM file first, then the classic one.
fn attr_current(lsm: &str) -> std::io::Result<String> {
    std::fs::read_to_string(format!("/proc/self/attr/{lsm}/current"))
        .or_else(|_| std::fs::read_to_string("/proc/self/attr/current"))
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

pub fn check(cx: &Ctx, t: &mut T) {
    seccomp(cx, t);
    if let Some(p) = str_at(&cx.cfg, "process.apparmorProfile") {
        match attr_current("apparmor") {
            // AppArmor shows "name (mode)".
            Ok(cur) => {
                t.eq(
                    "process.apparmorProfile",
                    p,
                    cur.split(" (").next().unwrap_or(""),
                );
            }
            Err(e) => t.error("process.apparmorProfile", format!("attr/current: {e}")),
        }
    }
    if let Some(l) = str_at(&cx.cfg, "process.selinuxLabel") {
        match attr_current("selinux") {
            Ok(cur) => {
                t.eq("process.selinuxLabel", l, &cur);
            }
            Err(e) => t.error("process.selinuxLabel", format!("attr/current: {e}")),
        }
    }
}
