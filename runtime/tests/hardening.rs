//! Protections against the bug classes behind runc's CVEs.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{berth_bin, Bundle};
use serde_json::{json, Value};

/// CVE-2019-5736: a container process must not reach the host berth binary
/// through /proc/<init>/exe while init is still berth. Without
/// CAP_SYS_PTRACE, that needs init to be dumpable, which it is not.
#[test]
fn created_init_hides_its_exe() {
    let mut b = Bundle::new("exe");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    let probe = |drop_ptrace: bool| {
        let mut c = Command::new("readlink");
        c.arg("-v");
        c.arg(format!("/proc/{pid}/exe"));
        if drop_ptrace {
            // SAFETY: only capset in the forked child before exec.
            unsafe {
                c.pre_exec(|| {
                    caps::drop(
                        None,
                        caps::CapSet::Bounding,
                        caps::Capability::CAP_SYS_PTRACE,
                    )
                    .ok();
                    caps::drop(
                        None,
                        caps::CapSet::Effective,
                        caps::Capability::CAP_SYS_PTRACE,
                    )
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                    caps::drop(
                        None,
                        caps::CapSet::Permitted,
                        caps::Capability::CAP_SYS_PTRACE,
                    )
                    .map_err(|e| std::io::Error::other(e.to_string()))
                });
            }
        }
        c.output().unwrap()
    };
    // The host itself (with CAP_SYS_PTRACE) can read the link (the init is
    // still berth, run from its sealed copy, whose path reads "/")...
    let host = probe(false);
    assert!(host.status.success(), "{host:?}");
    // ...a root process without it, as in a container, does not.
    let jailed = probe(true);
    assert!(!jailed.status.success(), "exe readable: {jailed:?}");
    assert!(
        String::from_utf8_lossy(&jailed.stderr).contains("ermission denied"),
        "{jailed:?}"
    );
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// CVE-2024-21626: fds the caller leaks beyond --preserve-fds never reach
/// the container, and a cwd reached through one is refused.
#[test]
fn only_preserved_fds_reach_the_container() {
    let mut b = Bundle::new("fds");
    // `test -e` only stats, so the shell itself opens no fd while probing.
    b.sh(
        "for n in 0 1 2 3 4 5 6 7 8 9; do test -e /proc/self/fd/$n && printf '%s ' $n; done; true",
    );
    b.write();
    let host_dir = std::fs::File::open("/").unwrap();
    let extra = std::fs::File::open("/etc/hostname").unwrap();
    use std::os::fd::AsRawFd;
    let (d, e) = (host_dir.as_raw_fd(), extra.as_raw_fd());
    let out = b.dir.join("out");
    let mut c = Command::new(berth_bin());
    c.arg("--root")
        .arg(&b.root)
        .args([
            "run",
            "--preserve-fds",
            "1",
            "-b",
            b.dir.to_str().unwrap(),
            &b.id(),
        ])
        .stdout(std::fs::File::create(&out).unwrap());
    // SAFETY: dup2 in the forked child: fd 3 is preserved, fd 4 (a host dir) is a leak.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(e, 3) < 0 || libc::dup2(d, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(c.status().unwrap().success());
    // 0-2 stdio and 3 preserved; the host directory at 4 must be gone.
    let seen = std::fs::read_to_string(&out).unwrap();
    assert_eq!(seen.trim_end(), "0 1 2 3", "leaked fds");
    b.assert_clean();

    // cwd through the leaked fd: init's /proc/self/fd/4 would point at the host's /.
    let mut b = Bundle::new("cwdfd");
    b.config["process"]["cwd"] = json!("/proc/self/fd/4");
    b.args(&["true"]);
    b.write();
    let mut c = Command::new(berth_bin());
    c.arg("--root")
        .arg(&b.root)
        .args(["run", "-b", b.dir.to_str().unwrap(), &b.id()]);
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(d, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let res = c.output().unwrap();
    assert!(
        !res.status.success(),
        "container ran with a cwd outside its root"
    );
    b.assert_clean();
}

/// Kill whatever runs in the bundle's cgroup, so a test that caught a hang
/// can fail instead of hanging in its cleanup too.
fn kill_cgroup(b: &Bundle) {
    for dir in common::cgroup_dirs(&b.cgroup) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
            // SAFETY: kill(2) has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// `--preserve-fds N` with holes in 3..3+N: berth's own fds (the state
/// lock) must not land in the holes, or the waiting init holds the lock and
/// `start` (or create itself) blocks forever. The container sees just the
/// caller's fds.
#[test]
fn preserved_range_with_holes() {
    let mut b = Bundle::new("fdholes");
    b.sh(
        "for n in 0 1 2 3 4 5 6 7 8 9; do test -e /proc/self/fd/$n && printf '%s ' $n; done; true",
    );
    b.write();
    let out = b.dir.join("out");
    // `timeout` turns a hang into exit status 124.
    let berth = |args: &[&str], fd4: bool| {
        let script = if fd4 {
            "exec 4</etc/hostname; exec \"$@\""
        } else {
            "exec \"$@\""
        };
        Command::new("sh")
            .args(["-c", script, "sh", "timeout", "20", berth_bin()])
            .arg("--root")
            .arg(&b.root)
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .status()
            .unwrap()
            .code()
    };
    let id = b.id();
    let created = berth(
        &[
            "create",
            "--preserve-fds",
            "3",
            "-b",
            b.dir.to_str().unwrap(),
            &id,
        ],
        true,
    );
    let started = if created == Some(0) {
        berth(&["start", &id], false)
    } else {
        None
    };
    if started != Some(0) {
        kill_cgroup(&b);
        panic!("create exited {created:?}, start exited {started:?} (124: hung)");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.status() != "stopped" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let seen = std::fs::read_to_string(&out).unwrap();
    assert_eq!(seen.trim_end(), "0 1 2 4", "fds seen by the container");
    b.ok(&["delete", &id]);
    b.assert_clean();
}
