//! Scenarios where the runtime hands the driver a file descriptor over a
//! unix socket (SCM_RIGHTS): the seccomp notify listener and the console.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::lifecycle::sh;
use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "seccomp_notify",
        features: &["seccomp", "seccomp-notify"],
        run: seccomp_notify,
    },
    Scenario {
        name: "console",
        features: &["console"],
        run: console,
    },
];

/// Reads one message and the first fd that came with it.
fn recv_fd(s: &UnixStream) -> std::io::Result<(Vec<u8>, OwnedFd)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cmsg);
    // SAFETY: msg points at live buffers of the sizes given.
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: walking the control buffer the kernel just filled.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !c.is_null() {
        // SAFETY: c is a valid cmsghdr within msg_control.
        let h = unsafe { &*c };
        if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: SCM_RIGHTS data holds at least one int; the fd is now ours.
            let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd) };
            buf.truncate(n as usize);
            return Ok((buf, unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        // SAFETY: as above.
        c = unsafe { libc::CMSG_NXTHDR(&msg, c) };
    }
    Err(std::io::Error::other("no SCM_RIGHTS fd in the message"))
}

/// Waits up to `ms` for `fd` to be readable; the revents, or None on timeout.
fn poll_in(fd: RawFd, ms: i32) -> Option<i16> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    (r > 0).then_some(p.revents)
}

// struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes), linux/seccomp.h.
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

// _IOWR('!', 0, struct seccomp_notif), _IOWR('!', 1, struct seccomp_notif_resp).
const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
const NOTIF_SEND: libc::c_ulong = 0xc018_2101;

/// What the agent saw: the state message and the syscall numbers it answered.
type AgentResult = Result<(Value, Vec<i64>), String>;

/// The seccomp agent: takes the listener fd and state, answers every
/// notification with EXDEV until the filter's processes are gone.
fn agent(l: UnixListener) -> AgentResult {
    l.set_nonblocking(false).map_err(|e| e.to_string())?;
    if poll_in(l.as_raw_fd(), 20_000).is_none() {
        return Err("the runtime never connected to listenerPath".into());
    }
    let (conn, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
    let (mut data, fd) = recv_fd(&conn).map_err(|e| format!("recvmsg: {e}"))?;
    let _ = (&conn).read_to_end(&mut data);
    let state: Value =
        serde_json::from_slice(&data).map_err(|e| format!("state is not JSON: {e}"))?;
    let mut nrs = Vec::new();
    loop {
        let Some(rev) = poll_in(fd.as_raw_fd(), 20_000) else {
            return Err("no notification and no hangup in 20 s".into());
        };
        if rev & libc::POLLIN == 0 {
            return Ok((state, nrs)); // POLLHUP: the container is gone.
        }
        let mut req = Notif::default();
        // SAFETY: req is a zeroed seccomp_notif, as the kernel requires.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut req) } < 0 {
            continue; // the task died between poll and receive
        }
        nrs.push(req.nr as i64);
        let resp = NotifResp {
            id: req.id,
            val: 0,
            error: -libc::EXDEV,
            flags: 0,
        };
        // SAFETY: resp is a valid seccomp_notif_resp. The target may be gone (ENOENT).
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp) };
    }
}

fn seccomp_notify(c: &mut Case) {
    let sock = c.dir.join("agent.sock");
    let l = match UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => return c.t.error("bind the agent socket", e),
    };
    let names = ["mkdir", "mkdirat"];
    c.cfg["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "conformance",
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}]
    });
    sh(
        c,
        "mkdir /tmp/x; echo status=$?; test -d /tmp/x || echo absent",
    );
    let agent = std::thread::spawn(move || agent(l));
    let id = c.new_id();
    if c.create_ok("create", &id, &[]) {
        c.ok("start", &c.call(&["start", &id]));
        c.wait_status("process exits", &id, "stopped");
    } else {
        // Unblock the agent: nobody will connect.
        let _ = UnixStream::connect(&sock);
    }
    let out = c.output(&id);
    let err = std::fs::read_to_string(c.dir.join(format!("{id}.err"))).unwrap_or_default();
    c.t.ok(
        err.contains("Invalid cross-device link") || err.contains("EXDEV"),
        "mkdir fails with the errno the agent sent (EXDEV)",
        format!("stderr {:?}", err.lines().last().unwrap_or("")),
    );
    c.t.ok(
        out.contains("status=1") && out.contains("absent"),
        "mkdir returned an error and made nothing",
        format!("output {out:?}"),
    );
    match agent.join() {
        Ok(Ok((msg, nrs))) => {
            c.t.eq("state message: fds", &json!(["seccompFd"]), &msg["fds"]);
            c.t.eq(
                "state message: metadata",
                &json!("conformance"),
                &msg["metadata"],
            );
            c.t.eq(
                "state message: container id",
                &json!(id),
                &msg["state"]["id"],
            );
            c.t.ok(
                msg["pid"].as_i64().is_some_and(|p| p > 0),
                "state message: pid",
                format!("{msg}"),
            );
            #[cfg(target_arch = "x86_64")]
            let mk = [libc::SYS_mkdir, libc::SYS_mkdirat];
            #[cfg(not(target_arch = "x86_64"))]
            let mk = [libc::SYS_mkdirat];
            c.t.ok(
                !nrs.is_empty() && nrs.iter().all(|n| mk.contains(n)),
                "the agent was asked only about mkdir/mkdirat",
                format!("syscalls {nrs:?}"),
            );
        }
        Ok(Err(e)) => c.t.error("seccomp agent", e),
        Err(_) => c.t.error("seccomp agent", "panicked"),
    }
    c.ok("delete", &c.call(&["delete", &id]));
}

/// Reads the pty master until the slave side is closed (EIO) or `limit`.
fn read_pty(fd: &OwnedFd, limit: Duration) -> String {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        if poll_in(fd.as_raw_fd(), 100).is_none() {
            continue;
        }
        // SAFETY: reading into a local buffer of its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn console(c: &mut Case) {
    c.cfg["process"]["terminal"] = json!(true);
    c.cfg["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    sh(
        c,
        "tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys",
    );
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails("terminal without --console-socket fails", &out);
    c.rt().force_delete(&id);
    let sock = c.dir.join("console.sock");
    let l = match UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => return c.t.error("bind the console socket", e),
    };
    let s = sock.to_string_lossy().into_owned();
    let id = c.new_id();
    if !c.create_ok("create --console-socket", &id, &["--console-socket", &s]) {
        return;
    }
    let _ = l.set_nonblocking(true);
    let master = match l.accept().map_err(|e| e.to_string()).and_then(|(conn, _)| {
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        recv_fd(&conn).map_err(|e| e.to_string())
    }) {
        Ok((_, fd)) => fd,
        Err(e) => return c.t.error("receive the pty master", e),
    };
    c.ok("start", &c.call(&["start", &id]));
    let out = read_pty(&master, super::SETTLE);
    let lines: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
    c.t.ok(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "the process's terminal is a /dev/pts device",
        format!("output {out:?}"),
    );
    c.t.eq(
        "consoleSize sets rows and columns",
        Some(&"31 97"),
        lines.get(1),
    );
    c.t.eq(
        "stdin, stdout and stderr are the terminal",
        Some(&"all-ttys"),
        lines.get(2),
    );
    c.wait_status("process exits", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
}
