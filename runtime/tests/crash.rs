//! Regression tests for crash consistency and hooks (CRASH-CONSISTENCY.md);
//! the step-by-step fault loop is tests/faults.rs.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{berth_bin, Bundle};
use serde_json::json;

fn pids_named(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim().starts_with('Z'))
        });
        if !zombie && String::from_utf8_lossy(&cmd).contains(marker) {
            out.push(pid);
        }
    }
    out
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// runc kills what a container without its own pid namespace left in its
/// cgroup; berth used to fail with EBUSY and leave it running.
#[test]
fn delete_of_a_stopped_container_without_pidns_kills_its_leftovers() {
    let mut b = Bundle::new("nopidns");
    let marker = format!("{}-bg", b.name);
    b.sh(&format!("sh -c 'sleep 1000; : {marker}' & exit 0"));
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    b.ok(&["run", "-d", "-b", &dir, &id]);
    wait_for("the init to exit", Duration::from_secs(10), || {
        b.status() == "stopped"
    });
    assert!(
        !pids_named(&marker).is_empty(),
        "background process missing"
    );
    b.ok(&["delete", &id]);
    wait_for("the leftover to die", Duration::from_secs(5), || {
        pids_named(&marker).is_empty()
    });
    b.assert_clean();
}

/// A state dir with no state.json (create killed right after mkdir) and a
/// container whose state.json was removed: `list` shows them, `delete -f`
/// removes them with their processes and cgroup.
#[test]
fn broken_state_is_listed_and_force_deleted() {
    let mut b = Bundle::new("broken");
    let marker = format!("{}-main", b.name);
    b.sh(&format!("sleep 1000; : {marker}"));
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    b.ok(&["run", "-d", "-b", &dir, &id]);
    std::fs::remove_file(b.root.join(&id).join("state.json")).unwrap();
    std::fs::create_dir(b.root.join("bare")).unwrap();
    let list = b.ok(&["list"]);
    assert!(list.contains(&id) && list.contains("bare"), "{list}");
    assert!(list.contains("unknown"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&b.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
    b.fails(&["state", &id]);
    b.ok(&["delete", "-f", &id]);
    b.ok(&["delete", "-f", "bare"]);
    assert!(pids_named(&marker).is_empty(), "container left running");
    b.assert_clean();
    // The id is free again.
    b.sh("true");
    b.ok(&["run", "-d", "-b", &dir, &id]);
    b.ok(&["delete", "-f", &id]);
}

/// SIGTERM while create waits for a hook: berth undoes everything itself
/// and kills the hook.
#[test]
fn sigterm_during_create_cleans_up() {
    let mut b = Bundle::new("sigterm");
    let marker = b.dir.join("hook-started");
    let hook_tag = format!("{}-hook", b.name);
    b.config["hooks"] = json!({"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("touch {}; sleep 1000; : {hook_tag}", marker.display())],
    }]});
    b.write();
    let child = Command::new(berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["create", "-b", b.dir.to_str().unwrap(), &b.id()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the hook", Duration::from_secs(10), || marker.exists());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(pids_named(&hook_tag).is_empty(), "hook left running");
    assert!(pids_named(&b.id()).is_empty(), "init left running");
    b.assert_clean();
}

/// A hook that never reads a 2 MB state times out (the timer used to start
/// only after the state was written), and its background children die with it.
#[test]
fn hook_timeout_is_armed_before_stdin_and_kills_the_group() {
    let mut b = Bundle::new("hooktimeout");
    let tag = format!("{}-hookchild", b.name);
    b.config["annotations"] = json!({"big": "x".repeat(2 << 20)});
    b.config["hooks"] = json!({"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("sh -c 'sleep 1000; : {tag}' & sleep 1000")],
        "timeout": 1,
    }]});
    let start = Instant::now();
    let err = b.fails(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(start.elapsed() < Duration::from_secs(30), "run hung");
    assert!(err.contains("timed out"), "{err}");
    assert!(pids_named(&tag).is_empty(), "the hook's child survived");
    b.assert_clean();
}

#[test]
fn hook_timeout_must_be_positive() {
    for t in [0, -1] {
        let mut b = Bundle::new("hookzero");
        b.config["hooks"] = json!({"poststop": [{"path": "/bin/true", "timeout": t}]});
        let err = b.fails(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(
            err.contains("hooks.poststop[0].timeout") && err.contains("greater than zero"),
            "{err}"
        );
        b.assert_clean();
    }
}

/// The init's own reason, never the broken pipe it leaves behind: a case
/// that fails early in the init, repeated.
#[test]
fn init_errors_keep_their_reason() {
    for _ in 0..15 {
        let mut b = Bundle::new("initerr");
        b.config["hostname"] = json!("h".repeat(100));
        let err = b.fails(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(err.contains("hostname"), "{err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("ECONNRESET"),
            "{err}"
        );
        b.assert_clean();
    }
}

/// A user namespace whose root cannot reach the bundle (under a 0700
/// directory) fails in its first mount, every time with that reason, as
/// runc says `error preparing rootfs: mount …: permission denied`.
#[test]
fn userns_bundle_out_of_reach_reports_the_mount_error() {
    use std::os::unix::fs::PermissionsExt;
    for _ in 0..8 {
        let mut b = Bundle::new("usernsperm");
        let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "user"}));
        b.config["linux"]["uidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.config["linux"]["gidMappings"] =
            json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.write();
        std::fs::set_permissions(&b.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = b.fails(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(err.contains("Permission denied"), "{err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("ECONNRESET"),
            "{err}"
        );
        b.assert_clean();
    }
}

/// `berth start` of `b`'s container in the background, its stderr piped.
fn spawn_start(b: &Bundle) -> std::process::Child {
    b.write();
    Command::new(berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["start", &b.id()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until `start` (pid `pid`) holds exec.fifo open: it is then in its
/// wait for the init, with its signal handlers in place.
fn wait_start_waiting(b: &Bundle, pid: u32) {
    let fifo = b.root.join(b.id()).join("exec.fifo");
    wait_for("start to open exec.fifo", Duration::from_secs(20), || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l == fifo))
            })
            .unwrap_or(false)
    });
}

/// The child's output once it exits, or None (and it is killed) if it is
/// still running after `timeout`: a hang fails the test instead of CI.
fn exit_within(mut child: std::process::Child, timeout: Duration) -> Option<std::process::Output> {
    let end = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// A created container whose init is stopped (SIGSTOP), so that it cannot
/// take the fifo's write side while `start` waits; returns the init's pid.
fn created_with_stopped_init(b: &mut Bundle) -> nix::unistd::Pid {
    b.args(&["sleep", "1000"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let st: serde_json::Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = nix::unistd::Pid::from_raw(st["pid"].as_i64().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    pid
}

fn assert_one_line_failure(out: &std::process::Output, want: &str) {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{:?}: {err}",
        out.status
    );
    assert_eq!(err.lines().count(), 1, "one-line error expected: {err:?}");
    assert!(err.starts_with("berth: ") && err.contains(want), "{err}");
}

/// An init that dies while `start` waits for it to open exec.fifo: start
/// used to block in open(2) for ever; now it fails at once, saying so, and
/// the container is stopped, then removable.
#[test]
fn start_fails_when_the_init_dies_while_it_waits() {
    let mut b = Bundle::new("startdead");
    let init = created_with_stopped_init(&mut b);
    let start = spawn_start(&b);
    wait_start_waiting(&b, start.id());
    nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL).unwrap();
    let out = exit_within(start, Duration::from_secs(20)).expect("start hung");
    assert_one_line_failure(&out, &format!("exited before start (pid {init})"));
    wait_for("the init to go", Duration::from_secs(10), || {
        b.status() == "stopped"
    });
    b.ok(&["delete", "-f", &b.id()]);
    b.assert_clean();
}

/// SIGTERM ends a `start` that waits for an init that does not come (here
/// stopped): with an error, and the container still created, so that a
/// second `start` releases it once the init runs again.
#[test]
fn sigterm_ends_a_waiting_start_and_leaves_the_container_created() {
    let mut b = Bundle::new("startterm");
    let init = created_with_stopped_init(&mut b);
    let start = spawn_start(&b);
    wait_start_waiting(&b, start.id());
    let spid = nix::unistd::Pid::from_raw(start.id() as i32);
    nix::sys::signal::kill(spid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = exit_within(start, Duration::from_secs(20)).expect("start ignored SIGTERM");
    assert_one_line_failure(&out, "interrupted by SIGTERM");
    nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGCONT).unwrap();
    // The init finds no reader for its byte and waits for the next start.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.status(), "created");
    let out = exit_within(spawn_start(&b), Duration::from_secs(20)).expect("second start hung");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "-f", &b.id()]);
    b.assert_clean();
}
