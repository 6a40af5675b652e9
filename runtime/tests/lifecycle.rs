//! The OCI lifecycle through the CLI, with real containers (needs root).

mod common;

use common::Bundle;
use serde_json::Value;

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn every_status_transition() {
    let mut b = Bundle::new("life");
    b.args(&["sleep", "100"]);
    let id = b.id();
    let pidfile = b.dir.join("pid");
    b.ok(&[
        "create",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "-b",
        b.dir.to_str().unwrap(),
        &id,
    ]);
    assert_eq!(b.status(), "created");
    let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.0.2-dev");
    assert_eq!(st["bundle"], b.dir.to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    // The container outlives `berth create`, held before the user program.
    assert!(pid_alive(pid));
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        !cmd.starts_with(b"sleep"),
        "user program must not run before start"
    );

    b.ok(&["start", &id]);
    assert_eq!(b.status(), "running");
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmd.starts_with(b"sleep\x00100"), "{cmd:?}");

    b.ok(&["kill", &id, "KILL"]);
    for _ in 0..200 {
        if b.status() == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);

    b.ok(&["delete", &id]);
    assert!(!pid_alive(pid));
    b.fails(&["state", &id]);
    b.assert_clean();
}

#[test]
fn list_shows_containers() {
    let mut b = Bundle::new("list");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let table = b.ok(&["list"]);
    assert!(table.lines().next().unwrap().starts_with("ID"));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("created")),
        "{table}"
    );
    let json: Value = serde_json::from_str(&b.ok(&["list", "-f", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    // The owner is the table's OWNER column (root: the tests run as root).
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap();
    let owner = row.split_whitespace().last().unwrap();
    assert_eq!(json[0]["owner"], owner, "{table}");
    assert_ne!(owner, "");
    assert_eq!(b.ok(&["list", "-q"]).trim(), id);
    b.ok(&["delete", "--force", &id]);
    b.assert_clean();
}

#[test]
fn run_returns_exit_status_and_cleans_up() {
    let mut b = Bundle::new("exit");
    b.sh("echo out; echo err >&2; exit 7");
    let (code, out, err) = b.run();
    assert_eq!(code, 7, "stderr: {err}");
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
    b.assert_clean();
}

#[test]
fn run_reports_death_by_signal() {
    let mut b = Bundle::new("sig");
    // Without its own pid namespace the shell is not an unkillable pid 1.
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    b.sh("kill -9 $$");
    let (code, _, _) = b.run();
    assert_eq!(code, 128 + 9);
    b.assert_clean();
}

#[test]
fn run_detached_then_kill_and_delete() {
    let mut b = Bundle::new("detach");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    assert_eq!(b.status(), "running");
    b.ok(&["kill", &id]);
    b.ok(&["delete", "--force", &id]);
    b.assert_clean();
}

#[test]
fn kill_accepts_runc_signal_spellings() {
    let mut b = Bundle::new("killsig");
    // pid 1 ignores signals it has no handler for, so trap the ones we send.
    b.sh("trap 'echo usr1' USR1; trap 'exit 3' TERM; while :; do sleep 0.05; done");
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    for s in ["USR1", "SIGUSR1", "10"] {
        b.ok(&["kill", &id, s]);
    }
    b.ok(&["kill", &id, "sigterm"]);
    for _ in 0..300 {
        if b.status() == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(b.status(), "stopped");
    b.ok(&["delete", &id]);
    b.assert_clean();
}

#[test]
fn delete_force_kills_created_and_running() {
    for start in [false, true] {
        let mut b = Bundle::new("force");
        b.args(&["sleep", "100"]);
        let id = b.id();
        b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
        if start {
            b.ok(&["start", &id]);
        }
        let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
        let pid = st["pid"].as_i64().unwrap() as i32;
        b.ok(&["delete", "-f", &id]);
        assert!(!pid_alive(pid));
        b.assert_clean();
    }
}

#[test]
fn delete_of_a_created_container_kills_it_as_runc_does() {
    let mut b = Bundle::new("delcreated");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let st: Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = st["pid"].as_i64().unwrap() as i32;
    b.ok(&["delete", &id]);
    assert!(!pid_alive(pid));
    b.assert_clean();
}

#[test]
fn spec_writes_a_usable_template_once() {
    let b = Bundle::new("spec");
    // Bundle::new ran `berth spec` already: a second one must not overwrite it.
    let err = b.fails(&["spec", "-b", b.dir.to_str().unwrap()]);
    assert!(err.contains("config.json"), "{err}");
    let v: Value =
        serde_json::from_slice(&std::fs::read(b.dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    let d = b.dir.join("rootless");
    std::fs::create_dir_all(&d).unwrap();
    b.ok(&["spec", "--rootless", "-b", d.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&std::fs::read(d.join("config.json")).unwrap()).unwrap();
    let ns: Vec<_> = v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect();
    assert!(ns.contains(&"user".to_string()), "{ns:?}");
    assert!(!ns.contains(&"network".to_string()), "{ns:?}");
}

#[test]
fn errors_are_logged_as_runc_json_lines() {
    let b = Bundle::new("log");
    let log = b.dir.join("log.json");
    let out = b.berth(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "state",
        "nope",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("nope"), "{line}");
    assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
}

#[test]
fn no_pivot_uses_chroot() {
    let mut b = Bundle::new("nopivot");
    b.sh("echo $$; ls /");
    let id = b.id();
    let out = b.berth(&["run", "--no-pivot", "-b", b.dir.to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("1\n") && text.contains("bin\n"), "{text}");
    b.assert_clean();
}

#[test]
fn new_time_namespace() {
    let mut b = Bundle::new("timens");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "time"}));
    b.config["linux"]["timeOffsets"] =
        serde_json::json!({"monotonic": {"secs": 86400, "nanosecs": 0}});
    b.sh("readlink /proc/self/ns/time; cat /proc/self/timens_offsets");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let host = std::fs::read_link("/proc/self/ns/time").unwrap();
    assert_ne!(out.lines().next().unwrap(), host.to_str().unwrap(), "{out}");
    assert!(out.contains("monotonic") && out.contains("86400"), "{out}");
    b.assert_clean();
}

/// A time namespace with offsets inside a new user namespace: the offsets
/// file must be written with the init's own credentials (it failed with
/// only "sync: send: Broken pipe" while each namespace alone worked).
#[test]
fn time_namespace_in_a_user_namespace() {
    let mut b = Bundle::new("timeuserns");
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(serde_json::json!({"type": "time"}));
    ns.push(serde_json::json!({"type": "user"}));
    let map = serde_json::json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    b.config["linux"]["timeOffsets"] = serde_json::json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 172800, "nanosecs": 0}
    });
    // The rootfs belongs to unmapped host root: keep it read-only.
    b.config["root"]["readonly"] = serde_json::json!(true);
    b.sh("cat /proc/self/timens_offsets; id -u");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        norm,
        ["monotonic 86400 0", "boottime 172800 0", "0"],
        "{out}"
    );
    b.assert_clean();
}
