//! `berth exec`: a process joins a running container.

mod common;

use std::io::Read;

use common::Bundle;
use serde_json::{json, Value};

fn running(tag: &str, tweak: impl FnOnce(&mut Bundle)) -> Bundle {
    let mut b = Bundle::new(tag);
    b.args(&["sleep", "100"]);
    tweak(&mut b);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    b
}

fn init_pid(b: &Bundle) -> i64 {
    let st: Value = serde_json::from_str(&b.ok(&["state", &b.id()])).unwrap();
    st["pid"].as_i64().unwrap()
}

fn finish(b: Bundle) {
    b.ok(&["delete", "-f", &b.id()]);
    b.assert_clean();
}

#[test]
fn joins_every_namespace_and_the_cgroup() {
    let b = running("exns", |_| {});
    let id = b.id();
    let out = b.ok(&["exec", &id, "sh", "-c", "echo $$; for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done; hostname"]);
    let pid = init_pid(&b);
    let mut lines = out.lines();
    assert_ne!(
        lines.next().unwrap(),
        "1",
        "exec'd process must not be pid 1: {out}"
    );
    for n in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        let want = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines.next().unwrap(), want.to_str().unwrap(), "{n}");
    }
    assert_eq!(lines.next().unwrap(), "berth");
    // From the host: the exec'd process sits in the container's cgroup.
    let out = b.ok(&[
        "exec",
        "-d",
        "--pid-file",
        b.dir.join("xpid").to_str().unwrap(),
        &id,
        "sleep",
        "50",
    ]);
    assert!(out.is_empty());
    let xpid = std::fs::read_to_string(b.dir.join("xpid")).unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{xpid}/cgroup")).unwrap();
    assert!(cg.lines().any(|l| l.ends_with(&b.cgroup)), "{cg}");
    finish(b);
}

#[test]
fn exit_status_env_user_cwd() {
    let b = running("exuser", |_| {});
    let id = b.id();
    let out = b.berth(&["exec", &id, "sh", "-c", "exit 42"]);
    assert_eq!(out.status.code(), Some(42));
    let out = b.ok(&[
        "exec",
        "-u",
        "1000:1001",
        "--additional-gids",
        "7",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        &id,
        "sh",
        "-c",
        "id -u; id -g; id -G; echo $FOO; pwd",
    ]);
    assert_eq!(out, "1000\n1001\n1001 7\nbar\n/tmp\n");
    finish(b);
}

#[test]
fn process_json_and_caps() {
    let b = running("exproc", |_| {});
    let id = b.id();
    let p = json!({
        "args": ["sh", "-c", "grep CapEff /proc/self/status; echo $X"],
        "env": ["PATH=/bin", "X=from-json"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}
    });
    let f = b.dir.join("process.json");
    std::fs::write(&f, p.to_string()).unwrap();
    let out = b.ok(&["exec", "--process", f.to_str().unwrap(), &id]);
    assert_eq!(out, "CapEff:\t0000000000000020\nfrom-json\n");
    let out = b.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let eff = u64::from_str_radix(out.trim().rsplit('\t').next().unwrap(), 16).unwrap();
    assert!(eff & (1 << 21) != 0, "CAP_SYS_ADMIN not added: {out}");
    finish(b);
}

/// CapInh, CapPrm, CapEff, CapBnd and CapAmb of a `/proc/self/status`.
fn cap_sets(status: &str) -> [String; 5] {
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:\t")))
            .unwrap_or_else(|| panic!("no {k} in {status}"))
            .to_string()
    };
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map(field)
}

/// CVE-2022-29162: `exec --cap` must not fill the inheritable or ambient
/// set (runc ≥ 1.1.2), and a process without a `capabilities` object gets
/// none at all (runc, crun), never root's full sets.
#[test]
fn cap_flag_never_fills_inheritable_or_ambient() {
    const KILL_AUDIT: &str = "0000000020000020";
    const NONE: &str = "0000000000000000";
    let empty =
        json!({"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []});
    for (tag, caps) in [("capempty", Some(empty)), ("capnone", None)] {
        let b = running(tag, |b| match caps {
            Some(c) => b.config["process"]["capabilities"] = c,
            None => {
                b.config["process"]
                    .as_object_mut()
                    .unwrap()
                    .remove("capabilities");
            }
        });
        let id = b.id();
        let init = b.ok(&["exec", &id, "cat", "/proc/self/status"]);
        assert_eq!(cap_sets(&init), [NONE; 5], "{tag}: {init}");
        let out = b.ok(&[
            "exec",
            "--cap",
            "CAP_KILL",
            "--cap",
            "CAP_AUDIT_WRITE",
            &id,
            "cat",
            "/proc/self/status",
        ]);
        assert_eq!(
            cap_sets(&out),
            [NONE, KILL_AUDIT, KILL_AUDIT, KILL_AUDIT, NONE],
            "{tag}: {out}"
        );
        // A process.json without capabilities: none, as for the init.
        let f = b.dir.join("process.json");
        let p =
            json!({"args": ["cat", "/proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        std::fs::write(&f, p.to_string()).unwrap();
        let out = b.ok(&["exec", "--process", f.to_str().unwrap(), &id]);
        assert_eq!(cap_sets(&out), [NONE; 5], "{tag} --process: {out}");
        finish(b);
    }
}

/// `berth spec` writes runc's template: no inheritable set, so the
/// ambient caps it lists cannot be raised and the container's init holds
/// none in either set.
#[test]
fn spec_template_has_no_inheritable_caps() {
    let b = running("capspec", |_| {});
    let caps = &b.config["process"]["capabilities"];
    assert!(caps.get("inheritable").is_none(), "{caps}");
    assert!(
        caps["bounding"].as_array().is_some_and(|a| !a.is_empty()),
        "{caps}"
    );
    let out = b.ok(&["exec", &b.id(), "cat", "/proc/self/status"]);
    let [inh, .., amb] = cap_sets(&out);
    assert_eq!(
        (inh.as_str(), amb.as_str()),
        ("0000000000000000", "0000000000000000")
    );
    finish(b);
}

#[test]
fn seccomp_applies_to_exec() {
    let b = running("exsec", |b| {
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
        });
    });
    let out = b.berth(&[
        "exec",
        &b.id(),
        "sh",
        "-c",
        "mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Operation not permitted") && text.contains("Seccomp:\t2"),
        "{text}"
    );
    finish(b);
}

#[test]
fn tty_exec_sends_pty_master() {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let b = running("extty", |_| {});
    let sock = b.dir.join("c.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg =
            recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
        let fd = msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmRights(f) => f.first().copied(),
            _ => None,
        });
        // SAFETY: just received.
        unsafe { OwnedFd::from_raw_fd(fd.unwrap()) }
    });
    let out = b.ok(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        &b.id(),
        "sh",
        "-c",
        "tty; echo ok",
    ]);
    assert!(out.is_empty());
    let mut f = std::fs::File::from(h.join().unwrap());
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).replace('\r', "");
    assert!(
        text.contains("/dev/pts/") && text.contains("ok\n"),
        "{text:?}"
    );
    finish(b);
}

#[test]
fn bad_exec_requests() {
    let b = running("exbad", |_| {});
    let id = b.id();
    let err = b.fails(&["exec", &id, "/no/such/binary"]);
    assert!(err.contains("/no/such/binary"), "{err}");
    let err = b.fails(&["exec", "-u", "root", &id, "true"]);
    assert!(err.contains("--user"), "{err}");
    let err = b.fails(&["exec", "--cap", "CAP_TEST", &id, "true"]);
    assert!(err.contains("CAP_TEST"), "{err}");
    let err = b.fails(&["exec", "--cgroup", "../escape", &id, "true"]);
    assert!(err.contains("--cgroup"), "{err}");
    let err = b.fails(&["exec", &id]);
    assert!(err.contains("command"), "{err}");
    b.ok(&["kill", &id, "KILL"]);
    while b.status() != "stopped" {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = b.fails(&["exec", &id, "true"]);
    assert!(err.contains("stopped"), "{err}");
    finish(b);
}

#[test]
fn tty_exec_in_the_foreground_relays_its_own_pty() {
    let b = running("exowntty", |_| {});
    let out = b.berth(&["exec", "-t", &b.id(), "sh", "-c", "tty; exit 6"]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    let st = std::fs::read_dir(b.root.join(b.id())).unwrap();
    let socks: Vec<_> = st
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".console"))
        .collect();
    assert!(socks.is_empty(), "console socket left behind");
    finish(b);
}
