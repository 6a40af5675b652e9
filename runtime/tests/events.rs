//! `berth events`: cgroup statistics and OOM notifications as JSON lines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{berth_bin, Bundle};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

fn start(b: &Bundle) {
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
}

fn finish(b: Bundle) {
    b.ok(&["delete", "-f", &b.id()]);
    b.assert_clean();
}

/// `berth events` with its stdout piped; lines arrive on the receiver.
fn stream(b: &Bundle, interval: &str) -> (Child, mpsc::Receiver<Value>) {
    let mut child = Command::new(berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["events", "--interval", interval, &b.id()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line).expect("each line is one JSON event");
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

fn next_of(rx: &mpsc::Receiver<Value>, kind: &str, within: Duration) -> Option<Value> {
    let end = Instant::now() + within;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) if v["type"] == kind => return Some(v),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn stats_once_reports_memory_and_pids() {
    let mut b = Bundle::new("evstats");
    b.args(&["sleep", "100"]);
    b.config["linux"]["resources"] = json!({
        "memory": {"limit": 32 * MIB},
        "pids": {"limit": 20}
    });
    start(&b);
    let out = b.ok(&["events", "--stats", &b.id()]);
    assert_eq!(out.lines().count(), 1, "one event: {out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], b.id().as_str());
    let d = &v["data"];
    assert_eq!(d["memory"]["usage"]["limit"], 32 * MIB, "{d}");
    let usage = d["memory"]["usage"]["usage"].as_u64().unwrap_or(0);
    assert!(usage > 0 && usage < 32 * MIB, "memory usage {usage}");
    assert!(
        d["memory"]["raw"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{d}"
    );
    assert_eq!(d["pids"], json!({"current": 1, "limit": 20}));
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    for k in ["kernel", "user"] {
        assert!(d["cpu"]["usage"][k].is_u64(), "cpu.usage.{k}: {d}");
    }
    finish(b);
}

#[test]
fn oom_is_reported_and_the_stream_ends_with_the_container() {
    let mut b = Bundle::new("evoom");
    std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin/tail")).unwrap();
    // The container waits for the host's go-ahead, so the OOM comes after
    // `events` has registered its watch (it has once it prints a stats line).
    b.sh("while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; sleep 0.3");
    // swap = limit keeps the shell from swapping, where swap is accounted.
    b.config["linux"]["resources"] = if common::host_has_memsw() {
        json!({"memory": {"limit": 16 * MIB, "swap": 16 * MIB}})
    } else {
        json!({"memory": {"limit": 16 * MIB}})
    };
    start(&b);
    let (mut child, rx) = stream(&b, "100ms");
    let first = next_of(&rx, "stats", Duration::from_secs(10)).expect("a stats event");
    assert_eq!(first["data"]["memory"]["usage"]["limit"], 16 * MIB);
    std::fs::write(b.dir.join("rootfs/tmp/go"), "").unwrap();
    let oom = next_of(&rx, "oom", Duration::from_secs(20)).expect("an oom event");
    assert_eq!(oom, json!({"type": "oom", "id": b.id()}));
    // The shell survives the OOM kill of tail, exits, and so does `events`.
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    finish(b);
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    let mut b = Bundle::new("evbad");
    b.args(&["true"]);
    let e = b.fails(&["events", "nosuch"]);
    assert!(e.contains("nosuch"), "{e}");
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    for (iv, want) in [
        ("0s", "greater than 0"),
        ("abc", "--interval"),
        ("5", "unit"),
    ] {
        let e = b.fails(&["events", "--interval", iv, &id]);
        assert!(e.contains(want), "{iv}: {e}");
    }
    b.ok(&["start", &id]);
    let end = Instant::now() + Duration::from_secs(5);
    while b.status() != "stopped" && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let e = b.fails(&["events", "--stats", &id]);
    assert!(e.contains("stopped"), "{e}");
    let e = b.fails(&["events", &id]);
    assert!(e.contains("stopped"), "{e}");
    finish(b);
}
