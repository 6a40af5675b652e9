//! pause/resume, ps and update on real containers (as root).

mod common;
#[macro_use]
mod skip;

use std::path::{Path, PathBuf};

use berth::cgroups::{Cgroup, Layout};
use common::Bundle;
use serde_json::{json, Value};

fn running(tag: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    b.args(&["sleep", "100"]);
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    b
}

fn cgroup_of(b: &Bundle) -> Cgroup {
    Cgroup::resolve(Some(Path::new(&b.cgroup)), "x").unwrap()
}

fn read(dir: &Path, file: &str) -> String {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn list_status(b: &Bundle) -> String {
    let v: Value = serde_json::from_str(&b.ok(&["list", "-f", "json"])).unwrap();
    v[0]["status"].as_str().unwrap().to_owned()
}

/// The init pid from `state`.
fn pid(b: &Bundle) -> i32 {
    let v: Value = serde_json::from_str(&b.ok(&["state", &b.id()])).unwrap();
    v["pid"].as_i64().unwrap() as i32
}

/// The freezer file of the container cgroup and its frozen value.
fn freezer_file(cg: &Cgroup) -> (PathBuf, &'static str) {
    match cg
        .controller_path("freezer")
        .filter(|_| cg.layout() != Layout::V2)
    {
        Some(d) => (d.join("freezer.state"), "FROZEN"),
        None => (cg.paths().last().unwrap().join("cgroup.freeze"), "1"),
    }
}

#[test]
fn pause_resume_state_and_list() {
    let b = running("pause");
    let id = b.id();
    let (file, frozen) = freezer_file(&cgroup_of(&b));
    b.ok(&["pause", &id]);
    assert_eq!(b.status(), "paused");
    assert_eq!(list_status(&b), "paused");
    assert_eq!(
        read(
            file.parent().unwrap(),
            file.file_name().unwrap().to_str().unwrap()
        ),
        frozen
    );
    let e = b.fails(&["pause", &id]);
    assert_eq!(
        e,
        format!("berth: container not running: container {id} is paused")
    );
    b.ok(&["resume", &id]);
    assert_eq!(b.status(), "running");
    assert_ne!(
        read(
            file.parent().unwrap(),
            file.file_name().unwrap().to_str().unwrap()
        ),
        frozen
    );
    let e = b.fails(&["resume", &id]);
    assert_eq!(
        e,
        format!("berth: container not paused: container {id} is running")
    );
    // A paused container can be deleted by force.
    b.ok(&["pause", &id]);
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// `exec --ignore-paused` into a paused container waits frozen in the
/// cgroup; `resume` must not wait for it (it did: the exec held the
/// container lock), and the exec completes once resumed, as with runc.
#[test]
fn exec_ignore_paused_then_resume() {
    let b = running("pauseexec");
    let id = b.id();
    b.ok(&["pause", &id]);
    let out = b.dir.join("exec.out");
    let mut exec = std::process::Command::new("timeout")
        .args(["-k", "2", "20", common::berth_bin(), "--root"])
        .arg(&b.root)
        .args(["exec", "--ignore-paused", &id, "echo", "resumed"])
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .unwrap();
    // Let the exec reach the frozen cgroup before resuming.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let resumed = std::process::Command::new("timeout")
        .args(["-k", "2", "10", common::berth_bin(), "--root"])
        .arg(&b.root)
        .args(["resume", &id])
        .status()
        .unwrap();
    let exec_status = exec.wait().unwrap();
    if resumed.code() != Some(0) {
        // Thaw by hand, or the frozen exec child (holding the lock) would
        // hang the cleanup too.
        let (file, frozen) = freezer_file(&cgroup_of(&b));
        let thawed = if frozen == "1" { "0" } else { "THAWED" };
        let _ = std::fs::write(file, thawed);
    }
    assert_eq!(resumed.code(), Some(0), "resume hung (124) or failed");
    assert_eq!(exec_status.code(), Some(0), "exec hung (124) or failed");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "resumed\n");
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn kill_of_a_paused_container() {
    let b = running("pausekill");
    let id = b.id();
    b.ok(&["pause", &id]);
    b.ok(&["kill", &id, "KILL"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.status() != "stopped" {
        assert!(std::time::Instant::now() < deadline, "still {}", b.status());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    b.ok(&["delete", &id]);
    b.assert_clean();
}

#[test]
fn pause_of_created_or_stopped_is_refused() {
    let mut b = Bundle::new("pausecreated");
    b.args(&["true"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let e = b.fails(&["pause", &id]);
    assert_eq!(
        e,
        format!("berth: container not running: container {id} is created")
    );
    b.ok(&["start", &id]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.status() != "stopped" {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let e = b.fails(&["pause", &id]);
    assert_eq!(
        e,
        format!("berth: container not running: container {id} is stopped")
    );
    let e = b.fails(&["resume", &id]);
    assert_eq!(
        e,
        format!("berth: container not paused: container {id} is stopped")
    );
    let e = b.fails(&["update", "--memory", "64m", &id]);
    assert_eq!(
        e,
        format!("berth: cannot update: container {id} is stopped")
    );
    b.ok(&["delete", &id]);
    assert_eq!(
        b.fails(&["pause", &id]),
        format!("berth: container does not exist: {id}")
    );
    b.assert_clean();
}

#[test]
fn ps_json_and_table() {
    let mut b = Bundle::new("ps");
    b.sh("sleep 100 & exec sleep 101");
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    let id = b.id();
    let init = pid(&b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let pids = loop {
        let pids: Vec<i32> = serde_json::from_str(&b.ok(&["ps", "-f", "json", &id])).unwrap();
        if pids.len() == 2 || std::time::Instant::now() > deadline {
            break pids;
        }
    };
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(pids.contains(&init));
    let table = b.ok(&["ps", &id]);
    let lines: Vec<&str> = table.lines().collect();
    // procps says CMD, busybox (the pure v2 test guest) COMMAND.
    assert!(lines[0].split_whitespace().any(|f| f == "PID"), "{table}");
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        table.contains("sleep 101") && table.contains("sleep 100"),
        "{table}"
    );
    let custom = b.ok(&["ps", &id, "-o", "pid,args"]);
    assert_eq!(custom.lines().count(), 3, "{custom}");
    assert!(custom.contains(&format!("{init} sleep 101")), "{custom}");
    // Refused by the command line, which names the formats there are.
    let out = b.berth(&["ps", "-f", "yaml", &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().next(),
        Some("berth: invalid value 'yaml' for '--format <FORMAT>' [possible values: table, json]"),
        "{err}"
    );
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// `berth state ID | grep -q …`: a reader that leaves before berth writes is
/// no error, and never a panic (println! panics on EPIPE).
#[test]
fn output_to_a_closed_pipe_is_quiet() {
    let b = running("epipe");
    let id = b.id();
    for args in [
        vec!["state", id.as_str()],
        vec!["ps", "-f", "json", id.as_str()],
        vec!["ps", id.as_str()],
        vec!["list"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(common::berth_bin())
            .arg("--root")
            .arg(&b.root)
            .args(&args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn update_flags_and_resources_file_read_back() {
    let mut b = Bundle::new("update");
    b.args(&["sleep", "100"]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864}, "pids": {"limit": 50}});
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    let id = b.id();
    let cg = cgroup_of(&b);
    let v2 = cg.layout() == Layout::V2;
    b.ok(&[
        "update",
        "--memory",
        "128m",
        "--memory-reservation",
        "32M",
        "--cpu-share",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--pids-limit",
        "20",
        "--cpuset-cpus",
        "0",
        &id,
    ]);
    let mem = cg.controller_path("memory").unwrap();
    let cpu = cg.controller_path("cpu").unwrap();
    assert_eq!(read(cg.controller_path("pids").unwrap(), "pids.max"), "20");
    assert_eq!(
        read(cg.controller_path("cpuset").unwrap(), "cpuset.cpus"),
        "0"
    );
    if v2 {
        assert_eq!(read(mem, "memory.max"), "134217728");
        assert_eq!(read(mem, "memory.low"), "33554432");
        assert_eq!(read(cpu, "cpu.max"), "50000 100000");
        assert_eq!(read(cpu, "cpu.weight"), "20");
    } else {
        assert_eq!(read(mem, "memory.limit_in_bytes"), "134217728");
        assert_eq!(read(mem, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu, "cpu.shares"), "512");
    }
    // The stored config follows, keeping what the update did not touch.
    let stored: Value =
        serde_json::from_slice(&std::fs::read(b.root.join(&id).join("config.json")).unwrap())
            .unwrap();
    let r = &stored["linux"]["resources"];
    assert_eq!(r["memory"]["limit"], 134217728);
    assert_eq!(r["memory"]["reservation"], 33554432);
    assert_eq!(r["pids"]["limit"], 20);
    assert_eq!(r["cpu"]["shares"], 512);

    let file = b.dir.join("res.json");
    std::fs::write(&file, r#"{"pids": {"limit": 9}, "cpu": {"quota": -1}}"#).unwrap();
    b.ok(&["update", "-r", file.to_str().unwrap(), &id]);
    assert_eq!(read(cg.controller_path("pids").unwrap(), "pids.max"), "9");
    if v2 {
        assert_eq!(read(cpu, "cpu.max"), "max 100000");
    } else {
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "-1");
    }
    // Paused containers can be updated too.
    b.ok(&["pause", &id]);
    b.ok(&["update", "--pids-limit", "11", &id]);
    assert_eq!(read(cg.controller_path("pids").unwrap(), "pids.max"), "11");
    assert_eq!(b.status(), "paused");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn update_bad_input() {
    let b = running("updatebad");
    let id = b.id();
    let cg = cgroup_of(&b);
    let pids = cg.controller_path("pids").unwrap().to_owned();
    let before = read(&pids, "pids.max");
    for (args, want) in [
        (vec!["--memory", "12x"], "berth: invalid configuration: --memory: invalid size \"12x\"".to_owned()),
        (
            vec!["-r", "/nonexistent/res.json"],
            "berth: read /nonexistent/res.json: No such file or directory (os error 2)".to_owned(),
        ),
        (
            vec!["-r", "-"],
            "berth: invalid configuration: --resources -: EOF while parsing a value at line 1 column 0".to_owned(),
        ),
    ] {
        let mut full = vec!["update"];
        full.extend(&args);
        full.push(&id);
        assert_eq!(b.fails(&full), want, "{args:?}");
    }
    let file = b.dir.join("dev.json");
    std::fs::write(&file, r#"{"devices": [{"allow": true, "access": "rwm"}]}"#).unwrap();
    let e = b.fails(&["update", "-r", file.to_str().unwrap(), &id]);
    assert_eq!(
        e,
        "berth: invalid configuration: linux.resources.devices: device rules cannot be updated"
    );
    // The rules it already has (containerd's CRI sends them back) are fine.
    let same = json!({"devices": b.config["linux"]["resources"]["devices"], "pids": {"limit": 12}});
    std::fs::write(&file, same.to_string()).unwrap();
    b.ok(&["update", "-r", file.to_str().unwrap(), &id]);
    assert_eq!(read(&pids, "pids.max"), "12");
    let reset = if before == "max" { "-1" } else { &before };
    b.ok(&["update", "--pids-limit", reset, &id]);
    // checkBeforeUpdate: a limit below the current usage is refused.
    let file = b.dir.join("low.json");
    std::fs::write(
        &file,
        r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
    )
    .unwrap();
    let e = b.fails(&["update", "-r", file.to_str().unwrap(), &id]);
    assert!(
        e.starts_with("berth: linux.resources.memory.limit: 4096 is below the current usage "),
        "{e}"
    );
    // A kernel refusal names the field and changes nothing else.
    let e = b.fails(&["update", "--cpuset-cpus", "4095", "--pids-limit", "3", &id]);
    assert!(
        e.starts_with("berth: linux.resources.cpu.cpus: writing \"4095\""),
        "{e}"
    );
    assert_eq!(read(&pids, "pids.max"), before);
    let stored: Value =
        serde_json::from_slice(&std::fs::read(b.root.join(&id).join("config.json")).unwrap())
            .unwrap();
    assert!(stored["linux"]["resources"]["cpu"]["cpus"].is_null());
    assert_eq!(
        b.fails(&["update", "--pids-limit", "3", "nope"]),
        "berth: container does not exist: nope"
    );
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn update_memory_unlimited_lifts_swap_too() {
    if !common::host_has_memsw() {
        skip!("cgroup v1 here does not account swap (no memory.memsw.limit_in_bytes)");
    }
    let mut b = Bundle::new("updateswap");
    b.args(&["sleep", "100"]);
    b.config["linux"]["resources"] = json!({"memory": {"limit": 67108864, "swap": 134217728}});
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    let id = b.id();
    let cg = cgroup_of(&b);
    let mem = cg.controller_path("memory").unwrap().to_owned();
    b.ok(&["update", "--memory", "-1", &id]);
    if cg.layout() == Layout::V2 {
        assert_eq!(read(&mem, "memory.max"), "max");
        assert_eq!(read(&mem, "memory.swap.max"), "max");
    } else {
        // The kernel shows "unlimited" as its largest page-aligned value.
        let unlimited: u64 = read(&mem, "memory.limit_in_bytes").parse().unwrap();
        assert!(unlimited > 1 << 60, "{unlimited}");
        let memsw: u64 = read(&mem, "memory.memsw.limit_in_bytes").parse().unwrap();
        assert_eq!(memsw, unlimited);
    }
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}
