//! The container init and exec'd processes join the container's cgroup in
//! every hierarchy, whichever way they got there (clone3 into the cgroup2
//! one, a self-move through v1 `tasks` files berth opened, or berth's write
//! of their pid as the fallback).

mod common;
#[macro_use]
mod skip;

use std::path::PathBuf;

use common::{cgroup_dirs, Bundle};
use serde_json::Value;

/// The container's cgroup directory in every hierarchy of the host, each
/// once (v1 mounts such as cpu and cpuacct are symlinks to one hierarchy).
fn hierarchies(b: &Bundle) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cgroup_dirs(&b.cgroup)
        .into_iter()
        .filter_map(|d| d.canonicalize().ok())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// `pid` is listed in cgroup.procs of the container's cgroup in every
/// hierarchy, and the kernel places it there in every hierarchy it reports.
fn assert_in_every_hierarchy(b: &Bundle, pid: &str, what: &str) {
    let dirs = hierarchies(b);
    assert!(
        !dirs.is_empty(),
        "{what}: no cgroup directory of {}",
        b.cgroup
    );
    for d in &dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == pid),
            "{what}: pid {pid} not in {}/cgroup.procs: {procs:?}",
            d.display()
        );
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in own.lines() {
        assert!(line.ends_with(&b.cgroup), "{what}: {line} in {own}");
    }
}

fn init_pid(b: &Bundle) -> String {
    let st: Value = serde_json::from_str(&b.ok(&["state", &b.id()])).unwrap();
    st["pid"].as_i64().unwrap().to_string()
}

#[test]
fn created_init_is_in_every_hierarchy() {
    let mut b = Bundle::new("cgjoin");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    assert_in_every_hierarchy(&b, &init_pid(&b), "create");
    b.ok(&["start", &id]);
    assert_in_every_hierarchy(&b, &init_pid(&b), "start");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn exec_process_is_in_every_hierarchy() {
    let mut b = Bundle::new("cgjoinx");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let pid_file = b.dir.join("xpid");
    b.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    let xpid = std::fs::read_to_string(&pid_file).unwrap();
    assert_in_every_hierarchy(&b, xpid.trim(), "exec");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn exec_into_sub_cgroup_is_in_every_hierarchy() {
    let mut b = Bundle::new("cgjoins");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let subs: Vec<PathBuf> = hierarchies(&b).iter().map(|d| d.join("sub")).collect();
    for s in &subs {
        std::fs::create_dir(s).unwrap();
        // A v1 cpuset cgroup takes no task before it has cpus and mems.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(v) = std::fs::read_to_string(s.parent().unwrap().join(f)) {
                std::fs::write(s.join(f), v.trim()).unwrap();
            }
        }
    }
    let pid_file = b.dir.join("xpid");
    b.ok(&[
        "exec",
        "-d",
        "--cgroup",
        "sub",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    let xpid = std::fs::read_to_string(&pid_file).unwrap();
    let xpid = xpid.trim();
    for s in &subs {
        let procs = std::fs::read_to_string(s.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == xpid),
            "{}: {procs:?}",
            s.display()
        );
    }
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// A v1 cpuset cgroup without cpus refuses tasks: the exec'd child cannot
/// join it by itself, asks berth, and berth's own write fails with the
/// kernel's reason, in one line, leaving the container as it was.
#[test]
fn exec_into_unusable_sub_cgroup_reports_why() {
    let mut b = Bundle::new("cgjoinf");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let cpuset = hierarchies(&b)
        .into_iter()
        .find(|d| d.join("cpuset.cpus").exists() && d.join("tasks").exists());
    let Some(cpuset) = cpuset else {
        b.ok(&["delete", "-f", &id]);
        skip!("no cgroup v1 cpuset hierarchy on this host");
    };
    for d in hierarchies(&b) {
        std::fs::create_dir(d.join("sub")).unwrap();
    }
    let err = b.fails(&["exec", "--cgroup", "sub", &id, "true"]);
    assert!(err.contains("cpuset"), "{err}");
    assert!(
        err.contains("No space left on device"),
        "the kernel's reason: {err}"
    );
    let procs = std::fs::read_to_string(cpuset.join("sub/cgroup.procs")).unwrap();
    assert!(procs.is_empty(), "{procs:?}");
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// A seccomp program that fails clone3 with `errno` and allows the rest:
/// what an old kernel (ENOSYS) or an outer sandbox's profile (EPERM, as in
/// Docker's before it knew clone3) shows berth.
fn deny_clone3(errno: i32) -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // seccomp_data.nr
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_clone3 as u32,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | errno as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// `berth args` under [`deny_clone3`]. Before the exec, the child checks
/// that the filter works: clone3 with a size of 0 is EINVAL unfiltered.
fn berth_without_clone3(b: &Bundle, errno: i32, args: &[&str]) {
    use std::os::unix::process::CommandExt;
    b.write();
    let prog = deny_clone3(errno);
    let err = b.dir.join(".clone3-err");
    let mut cmd = std::process::Command::new(common::berth_bin());
    cmd.arg("--root")
        .arg(&b.root)
        .args(args)
        .current_dir(&b.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    // SAFETY: between fork and exec only seccomp(2) and clone3(2), which
    // allocate nothing; `prog` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr().cast_mut(),
            };
            let r = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            );
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let probe = libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize);
            let got = std::io::Error::last_os_error().raw_os_error();
            if probe != -1 || got != Some(errno) {
                return Err(std::io::Error::other(format!(
                    "clone3 under the filter gave {probe}, errno {got:?}"
                )));
            }
            Ok(())
        });
    }
    let status = cmd.status().expect("spawn berth under the clone3 filter");
    assert!(
        status.success(),
        "berth {args:?} without clone3 (errno {errno}): {}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
}

/// Where clone3 is refused, berth falls back to clone(2): the init and an
/// exec'd process still start, and berth moves them into their cgroups
/// (CLONE_INTO_CGROUP is gone with clone3).
fn clone3_refused(errno: i32, tag: &str) {
    let mut b = Bundle::new(tag);
    b.args(&["sleep", "100"]);
    let id = b.id();
    let bundle = b.dir.to_str().unwrap().to_string();
    berth_without_clone3(&b, errno, &["create", "-b", &bundle, &id]);
    assert_in_every_hierarchy(&b, &init_pid(&b), "create");
    berth_without_clone3(&b, errno, &["start", &id]);
    assert_eq!(b.status(), "running");
    let pid_file = b.dir.join("xpid");
    let pid_arg = pid_file.to_str().unwrap().to_string();
    berth_without_clone3(
        &b,
        errno,
        &["exec", "-d", "--pid-file", &pid_arg, &id, "sleep", "50"],
    );
    let xpid = std::fs::read_to_string(&pid_file).unwrap();
    assert_in_every_hierarchy(&b, xpid.trim(), "exec");
    berth_without_clone3(&b, errno, &["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn clone3_enosys_falls_back_to_clone() {
    clone3_refused(libc::ENOSYS, "cl3nosys");
}

#[test]
fn clone3_eperm_falls_back_to_clone() {
    clone3_refused(libc::EPERM, "cl3perm");
}
