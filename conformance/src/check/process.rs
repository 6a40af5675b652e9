//! process: args, cwd, env, terminal, user (uid, gid, additionalGids, umask), hostname.

use conformance::json::{arr, at, bool_at, str_at, strs, u64_at};

use crate::{sys, Ctx, T};

pub fn check(cx: &Ctx, t: &mut T) {
    let c = &cx.cfg;
    let args: Vec<String> = std::env::args().collect();
    t.eq(
        "process.args reached the process",
        strs(at(c, "process.args")),
        args,
    );
    match (str_at(c, "process.cwd"), std::env::current_dir()) {
        (Some(want), Ok(got)) => {
            t.eq("process.cwd", want, &got.to_string_lossy());
        }
        (Some(_), Err(e)) => t.error("process.cwd", format!("getcwd: {e}")),
        (None, _) => t.skip("process.cwd", "not set"),
    }
    let env: Vec<String> = std::env::vars_os()
        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
        .collect();
    for e in strs(at(c, "process.env")) {
        t.ok(
            env.contains(&e),
            format!("process.env has {e}"),
            "not in the environment",
        );
    }
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(0) } == 1;
    t.eq(
        "process.terminal matches stdin being a tty",
        bool_at(c, "process.terminal"),
        tty,
    );
    user(cx, t);
    uts(cx, t);
}

fn user(cx: &Ctx, t: &mut T) {
    let c = &cx.cfg;
    let (uid, euid, gid, egid) = sys::ids();
    let want_uid = u64_at(c, "process.user.uid").unwrap_or(0) as u32;
    let want_gid = u64_at(c, "process.user.gid").unwrap_or(0) as u32;
    t.eq("process.user.uid (real)", want_uid, uid);
    t.eq("process.user.uid (effective)", want_uid, euid);
    t.eq("process.user.gid (real)", want_gid, gid);
    t.eq("process.user.gid (effective)", want_gid, egid);
    let mut want: Vec<u32> = arr(c, "process.user.additionalGids")
        .iter()
        .filter_map(|g| g.as_u64())
        .map(|g| g as u32)
        .collect();
    want.sort_unstable();
    want.dedup();
    // The primary gid may or may not appear in the supplementary list.
    let mut got: Vec<u32> = sys::groups()
        .into_iter()
        .filter(|g| *g != want_gid || want.contains(g))
        .collect();
    got.sort_unstable();
    got.dedup();
    t.eq(
        "process.user.additionalGids are the supplementary groups",
        want,
        got,
    );
    match u64_at(c, "process.user.umask") {
        Some(m) => {
            let got = cx
                .status("Umask")
                .and_then(|s| u32::from_str_radix(s, 8).ok());
            t.eq("process.user.umask", Some(m as u32), got);
        }
        None => t.skip("process.user.umask", "not set"),
    }
}

fn uts(cx: &Ctx, t: &mut T) {
    let (host, domain) = sys::uname();
    match str_at(&cx.cfg, "hostname") {
        Some(h) => {
            t.eq("hostname", h, &host);
        }
        None => t.skip("hostname", "not set"),
    }
    match str_at(&cx.cfg, "domainname") {
        Some(d) => {
            t.eq("domainname", d, &domain);
        }
        None => t.skip("domainname", "not set"),
    }
}
