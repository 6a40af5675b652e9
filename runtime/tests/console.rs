//! `terminal: true` with --console-socket: the pty master arrives over
//! SCM_RIGHTS and carries the container's output.

mod common;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use common::Bundle;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

fn recv_fd(l: &UnixListener) -> (OwnedFd, String) {
    use std::os::fd::AsRawFd;
    let (s, _) = l.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            fd = fds.first().copied();
        }
    }
    let n = msg.bytes;
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    // SAFETY: the fd was just received and is ours.
    (
        unsafe { OwnedFd::from_raw_fd(fd.expect("no fd received")) },
        name,
    )
}

#[test]
fn pty_master_is_sent_to_console_socket() {
    let mut b = Bundle::new("tty");
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    b.sh("tty; stty size; echo done");
    let sock = b.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let id = b.id();
    let s2 = sock.clone();
    let bundle = b.dir.clone();
    let handle = std::thread::spawn(move || recv_fd(&l));
    b.ok(&[
        "create",
        "--console-socket",
        s2.to_str().unwrap(),
        "-b",
        bundle.to_str().unwrap(),
        &id,
    ]);
    let (master, name) = handle.join().unwrap();
    assert!(name.starts_with("/dev/pts/"), "{name}");
    b.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    // Reading the master ends with EIO once the container closes the slave.
    let mut buf = [0u8; 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    assert!(out.contains("/dev/pts/0\n33 101\ndone\n"), "{out:?}");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn terminal_without_console_socket_fails_cleanly() {
    let mut b = Bundle::new("notty");
    b.config["process"]["terminal"] = json!(true);
    let id = b.id();
    let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("console-socket"), "{err}");
    b.assert_clean();
}

#[test]
fn run_relays_its_own_pty_without_console_socket() {
    let mut b = Bundle::new("owntty");
    b.config["process"]["terminal"] = json!(true);
    b.sh("tty; echo relayed; exit 4");
    let (code, out, err) = b.run();
    assert_eq!(code, 4, "{err}");
    let out = out.replace('\r', "");
    assert!(out.contains("/dev/pts/0\nrelayed\n"), "{out:?}");
    b.assert_clean();
    let leftovers: Vec<_> = std::fs::read_dir(&b.root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The runtime spec: with `terminal: true`, /dev/console is the pty.
#[test]
fn terminal_gives_dev_console() {
    let mut b = Bundle::new("ttyconsole");
    b.config["process"]["terminal"] = json!(true);
    b.sh("stat -c 'type=%F major=%t' /dev/console; echo via-console > /dev/console");
    let sock = b.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let id = b.id();
    let (s2, bundle) = (sock.clone(), b.dir.clone());
    let handle = std::thread::spawn(move || recv_fd(&l));
    b.ok(&[
        "create",
        "--console-socket",
        s2.to_str().unwrap(),
        "-b",
        bundle.to_str().unwrap(),
        &id,
    ]);
    let (master, _) = handle.join().unwrap();
    b.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    // Unix98 ptys have major 136 (0x88).
    assert!(
        out.contains("type=character special file major=88"),
        "{out:?}"
    );
    assert!(out.contains("via-console"), "{out:?}");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}
