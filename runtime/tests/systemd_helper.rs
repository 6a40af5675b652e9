//! The systemd driver's D-Bus helper, berth-systemd, as berth finds and
//! ends it on any host (the calls themselves are tested against a
//! stand-in manager in the library, and against systemd in
//! conformance/vm/systemd): a missing helper is one line naming where berth
//! looked, and a berth killed while its helper waits on the bus leaves no
//! helper and nothing `delete -f` cannot remove.

#![cfg(feature = "systemd")]

mod common;

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{berth_bin, Bundle};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use serde_json::json;

fn bundle(tag: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    b.config["linux"]["cgroupsPath"] = json!(format!("system.slice:berth-test:{}", b.id()));
    b.write();
    b
}

fn sd_run(berth: &Path, b: &Bundle, id: &str) -> Command {
    let mut c = Command::new(berth);
    c.arg("--root")
        .arg(&b.root)
        .args(["--systemd-cgroup", "run", "-b"])
        .arg(&b.dir)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs `c`, which must succeed (berth's stderr on failure).
fn succeeds(c: &mut Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn one_line_error(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    err
}

#[test]
fn a_missing_helper_is_one_line_naming_where_berth_looked() {
    let b = bundle("sd-nohelper");
    let id = b.id();
    // berth alone in a directory: the helper is looked for next to it,
    // not next to the sealed copy berth re-executes itself from.
    let alone = b.dir.join("bin");
    std::fs::create_dir_all(&alone).unwrap();
    let copy = alone.join("berth");
    std::fs::copy(berth_bin(), &copy).unwrap();
    let err = one_line_error(sd_run(&copy, &b, &id).env_remove("BERTH_SYSTEMD_HELPER"));
    let expected = alone.join("berth-systemd");
    assert!(
        err.contains(&format!("helper {},", expected.display()))
            && err.contains("$BERTH_SYSTEMD_HELPER"),
        "{err}"
    );
    b.assert_clean();
    // $BERTH_SYSTEMD_HELPER overrides the place.
    let err = one_line_error(
        sd_run(Path::new(berth_bin()), &b, &id).env("BERTH_SYSTEMD_HELPER", "/nonexistent/h"),
    );
    assert_eq!(
        err,
        "berth: $BERTH_SYSTEMD_HELPER names /nonexistent/h, which does not exist"
    );
    b.assert_clean();
    // A run without the driver never looks for it.
    succeeds(
        Command::new(&copy)
            .arg("--root")
            .arg(&b.root)
            .args(["run", "-b"])
            .arg(&b.dir)
            .arg(&id),
    );
    b.assert_clean();
}

fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie of some subreaper is dead too.
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_killed_berth_leaves_no_helper_behind() {
    if Path::new("/run/systemd/system").exists() {
        // The bus below must be the only one berth can reach.
        eprintln!("skipped: this host runs systemd");
        return;
    }
    let b = bundle("sd-kill");
    let id = b.id();
    // A "system bus" that accepts and never answers: the helper waits in
    // its handshake, berth waits for the helper.
    let sock = b.dir.join("bus.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut berth = sd_run(Path::new(berth_bin()), &b, &id)
        .env_remove("BERTH_SYSTEMD_HELPER")
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}", sock.display()),
        )
        .spawn()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(_) if t0.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => {
                let _ = berth.kill();
                panic!("the helper never connected: {e}");
            }
        }
    };
    let helper = getsockopt(&conn, PeerCredentials).unwrap().pid();
    let comm = std::fs::read_to_string(format!("/proc/{helper}/comm")).unwrap();
    assert_eq!(comm.trim(), "berth-systemd");
    berth.kill().unwrap();
    berth.wait().unwrap();
    let t0 = Instant::now();
    while !gone(helper) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "helper {helper} outlived the berth that started it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(conn);
    // This host has no systemd to stop the unit it never started: delete
    // talks to a stand-in helper that answers every call with success.
    let fake = b.dir.join("fake-helper");
    std::fs::write(
        &fake,
        "#!/bin/sh\nwhile read -r l; do echo '{\"Ok\":null}'; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    succeeds(
        Command::new(berth_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["delete", "-f", &id])
            .env("BERTH_SYSTEMD_HELPER", &fake),
    );
    b.assert_clean();
}
