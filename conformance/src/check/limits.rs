//! process: rlimits, oomScoreAdj, noNewPrivileges, ioPriority, scheduler, execCPUAffinity.

use conformance::json::{arr, at, bool_at, i64_at, str_at, u64_at};

use crate::{sys, Ctx, T};

const RLIMITS: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

pub fn check(cx: &Ctx, t: &mut T) {
    let c = &cx.cfg;
    for r in arr(c, "process.rlimits") {
        let name = str_at(r, "type").unwrap_or("?");
        let Some(res) = RLIMITS.iter().position(|n| *n == name) else {
            t.error(format!("rlimit {name}"), "not a Linux rlimit");
            continue;
        };
        let mut got = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: pid 0 is ourselves; only the old-limit out-pointer is given.
        if unsafe { libc::prlimit64(0, res as _, std::ptr::null(), &mut got) } != 0 {
            t.error(
                format!("rlimit {name}"),
                format!("prlimit: errno {}", sys::errno()),
            );
            continue;
        }
        t.eq(
            format!("{name} soft"),
            u64_at(r, "soft"),
            Some(got.rlim_cur),
        );
        t.eq(
            format!("{name} hard"),
            u64_at(r, "hard"),
            Some(got.rlim_max),
        );
    }
    match i64_at(c, "process.oomScoreAdj") {
        Some(want) => {
            let got = std::fs::read_to_string("/proc/self/oom_score_adj")
                .ok()
                .and_then(|s| s.trim().parse().ok());
            t.eq("process.oomScoreAdj", Some(want), got);
        }
        None => t.skip("process.oomScoreAdj", "not set"),
    }
    let nnp = if bool_at(c, "process.noNewPrivileges") {
        "1"
    } else {
        "0"
    };
    t.eq(
        "process.noNewPrivileges is NoNewPrivs",
        Some(nnp),
        cx.status("NoNewPrivs"),
    );
    io_priority(cx, t);
    scheduler(cx, t);
    affinity(cx, t);
}

fn io_priority(cx: &Ctx, t: &mut T) {
    let Some(p) = at(&cx.cfg, "process.ioPriority") else {
        return;
    };
    let class = match str_at(p, "class") {
        Some("IOPRIO_CLASS_RT") => 1,
        Some("IOPRIO_CLASS_BE") => 2,
        Some("IOPRIO_CLASS_IDLE") => 3,
        other => return t.error("process.ioPriority", format!("unknown class {other:?}")),
    };
    let want = class << 13 | i64_at(p, "priority").unwrap_or(0);
    // SAFETY: ioprio_get(IOPRIO_WHO_PROCESS, self) takes no pointers.
    let got = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    t.eq("process.ioPriority", want, got);
}

fn scheduler(cx: &Ctx, t: &mut T) {
    let Some(s) = at(&cx.cfg, "process.scheduler") else {
        return;
    };
    let policies = [
        "SCHED_OTHER",
        "SCHED_FIFO",
        "SCHED_RR",
        "SCHED_BATCH",
        "SCHED_ISO",
        "SCHED_IDLE",
        "SCHED_DEADLINE",
    ];
    let want = str_at(s, "policy").and_then(|p| policies.iter().position(|n| *n == p));
    // SAFETY: no pointers.
    let got = unsafe { libc::sched_getscheduler(0) };
    t.eq(
        "process.scheduler.policy",
        want.map(|w| w as i32),
        Some(got),
    );
    if let Some(n) = i64_at(s, "nice") {
        // SAFETY: no pointers; -1 is a valid nice value, so errno is not consulted.
        let got = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        t.eq("process.scheduler.nice", n, i64::from(got));
    }
    if let Some(p) = i64_at(s, "priority") {
        let mut sp = libc::sched_param { sched_priority: 0 };
        // SAFETY: sp is a valid out-pointer.
        unsafe { libc::sched_getparam(0, &mut sp) };
        t.eq(
            "process.scheduler.priority",
            p,
            i64::from(sp.sched_priority),
        );
    }
}

/// "0-2,5" as a sorted list of cpus.
fn cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?);
    }
    out.sort_unstable();
    Some(out)
}

fn affinity(cx: &Ctx, t: &mut T) {
    let Some(f) = str_at(&cx.cfg, "process.execCPUAffinity.final") else {
        return;
    };
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: set is a valid out-pointer of the size given.
    unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    let got: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|c| unsafe { libc::CPU_ISSET(*c, &set) })
        .collect();
    t.eq("process.execCPUAffinity.final", cpu_list(f), Some(got));
}
