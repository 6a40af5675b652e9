//! `berth shim-helper`, the containerd shim's request server
//! (`berth::api::helper`), driven over its socket as the shim drives it.

use std::fs::File;
use std::io::{IoSlice, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth::api::helper::{Job, PROTOCOL};
use berth::api::{ErrorKind, Reply, Request, Runtime};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-shim-helper-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A helper serving on a socket; our end is returned.
fn start(protocol: u32) -> (Child, OwnedFd) {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::empty(),
    )
    .unwrap();
    // Only the helper may hold its end, or it never sees our EOF.
    fcntl(&ours, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("shim-helper")
        .arg(format!("--fd={}", theirs.as_raw_fd()))
        .arg(format!("--protocol={protocol}"))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, ours)
}

/// Send one message as the shim does (no stdio: all /dev/null) and read
/// the exit status and reply the helper writes back.
fn ask(sock: &OwnedFd, json: &[u8]) -> (i32, Vec<u8>) {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut payload = vec![0u8];
    payload.extend_from_slice(json);
    let fds = [w.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    drop(w);
    let mut data = Vec::new();
    File::from(r).read_to_end(&mut data).unwrap();
    assert!(data.len() >= 4, "no status in the reply: {data:?}");
    let code = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
    (code, data.split_off(4))
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the helper did not exit at its socket's EOF");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_typed_requests_and_exits_at_eof() {
    let dir = scratch("serve");
    let (mut child, sock) = start(PROTOCOL);
    let job = Job {
        runtime: Runtime::new(dir.join("root")),
        log: dir.join("log.json"),
        request: Request::Kill {
            id: "no-such-container".into(),
            signal: 9,
            all: false,
        },
    };
    let (code, reply) = ask(&sock, &serde_json::to_vec(&job).unwrap());
    assert_eq!(code, 0, "the worker wrote its reply");
    match serde_json::from_slice::<Reply>(&reply).unwrap() {
        Reply::Err { kind, message } => {
            assert_eq!(kind, ErrorKind::NotFound, "{message}");
            assert!(message.contains("no-such-container"), "{message}");
        }
        other => panic!("kill of a missing container: {other:?}"),
    }
    // The worker logged the error as a `berth kill` would have.
    let log = std::fs::read_to_string(dir.join("log.json")).unwrap();
    assert!(log.contains("no-such-container"), "{log}");

    // A request it cannot read is an error reply, and the helper goes on.
    let (_, reply) = ask(&sock, b"{\"runtime\":");
    match serde_json::from_slice::<Reply>(&reply).unwrap() {
        Reply::Err { kind, message } => {
            assert_eq!(kind, ErrorKind::InvalidConfig { field: None }, "{message}");
            assert!(message.starts_with("berth request:"), "{message}");
        }
        other => panic!("malformed request: {other:?}"),
    }
    let (_, reply) = ask(&sock, &serde_json::to_vec(&job).unwrap());
    assert!(matches!(
        serde_json::from_slice::<Reply>(&reply).unwrap(),
        Reply::Err {
            kind: ErrorKind::NotFound,
            ..
        }
    ));

    drop(sock);
    assert_eq!(wait_exit(&mut child), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn another_protocol_is_refused_in_one_line() {
    let (child, _sock) = start(PROTOCOL + 1000);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("helper protocol {}", PROTOCOL + 1000)),
        "{err}"
    );
}
