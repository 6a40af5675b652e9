//! The shim's side of berth's request helper (`berth::api::helper`): a
//! single-threaded process that runs each request in a worker it forks, so
//! the shim's own threads never fork berth's operations.
//!
//! By default the helper is the `berth` binary installed next to the shim,
//! started as `berth shim-helper` when the shim starts (before containerd's
//! first request arrives, so that request finds it ready) and again on
//! demand. The shim closes its end of the socket once no request has been
//! in flight for a while (`IDLE`); the helper then exits. A shim that only
//! waits for its containers, the state of nearly every shim on a node,
//! holds no berth code at all: its binary has none, and no helper runs.
//!
//! Built with the `in-process` feature the shim forks the helper from
//! itself instead, before it starts any thread, and keeps it for its life:
//! a fork cannot be repeated once threads run.

use std::fs::File;
use std::io::{IoSlice, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};

use berth::api::helper::{stdio_mask, Job, Stdio, MAX_REQUEST};
use berth::api::{ErrorKind, Reply};

use crate::error::{Error, Result};
use crate::reaper::Reaper;

/// How long an exec'd helper is kept without a request in flight. A start,
/// its containerd calls and the task's exit usually fall within it; a
/// later exec or update pays one helper start (an exec and its sealed
/// re-exec, a few ms).
const IDLE: Duration = Duration::from_secs(3);

/// Set (in milliseconds) in the shim's environment to change `IDLE`.
pub const IDLE_ENV: &str = "BERTH_SHIM_HELPER_IDLE_MS";

static HELPER: OnceLock<Helper> = OnceLock::new();

/// Where the exec'd helper finds the read-only view of berth it runs from
/// (closed once it serves).
const VIEW_FD: RawFd = 4;

pub struct Helper {
    how: How,
    conn: Mutex<Conn>,
    /// Signalled when a helper starts or a request ends.
    changed: Condvar,
}

enum How {
    /// Forked before the shim's threads: the one helper of its life.
    #[cfg(feature = "in-process")]
    Forked,
    /// `berth shim-helper`, started on demand.
    Exec {
        binary: std::path::PathBuf,
        /// A read-only view of `binary` to exec, so that berth need not
        /// re-execute itself sealed (berth::seal); None where the shim may
        /// not mount, and berth seals itself.
        view: Option<OwnedFd>,
        reaper: Arc<Reaper>,
    },
}

#[derive(Default)]
struct Conn {
    /// The shim's end of the helper's socket, while one runs.
    sock: Option<OwnedFd>,
    /// The exec'd helper's pid.
    pid: Option<i32>,
    /// Requests sent whose reply has not been read yet.
    busy: usize,
    last: Option<Instant>,
}

fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::sys("socketpair for the berth helper"))
}

/// Fork the helper from this process. Must run before the shim starts any
/// thread.
#[cfg(feature = "in-process")]
pub fn fork_helper() -> Result<()> {
    use crate::sys::fork::{close_all_from_3_but, exit_now, fork, ForkResult};
    use nix::sys::prctl;
    use nix::sys::signal::Signal;
    use std::os::fd::AsFd;

    let (shim_end, helper_end) = seqpacket_pair()?;
    let shim = nix::unistd::getpid();
    // The caller guarantees the process is single-threaded.
    match fork().map_err(Error::sys("fork the berth helper"))? {
        ForkResult::Child => {
            drop(shim_end);
            // Nothing of the shim's but our socket and stdio: the shim's
            // listener in particular must close when the shim exits.
            close_all_from_3_but(helper_end.as_fd());
            // The helper must not outlive the shim that would send it requests.
            let _ = prctl::set_pdeathsig(Signal::SIGKILL);
            let _ = prctl::set_name(berth::api::helper::NAME);
            if nix::unistd::getppid() != shim {
                exit_now(0);
            }
            match berth::api::helper::serve(&helper_end) {
                Ok(()) => exit_now(0),
                Err(e) => {
                    eprintln!("berth shim helper: {e}");
                    exit_now(1)
                }
            }
        }
        ForkResult::Parent { .. } => {
            drop(helper_end);
            let conn = Conn {
                sock: Some(shim_end),
                ..Conn::default()
            };
            install(How::Forked, conn);
            Ok(())
        }
    }
}

/// Use `binary` (berth) as the helper: start it now, and again whenever a
/// request finds none running. Its exit is collected by `reaper`.
pub fn exec_helper(binary: std::path::PathBuf, reaper: Arc<Reaper>) -> Result<()> {
    let idle = std::env::var(IDLE_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(IDLE, Duration::from_millis);
    let view = berth::seal::read_only_view_of(&binary).ok();
    let h = install(
        How::Exec {
            binary,
            view,
            reaper,
        },
        Conn::default(),
    );
    let mut conn = h.conn.lock().unwrap();
    let started = h.launch(&mut conn);
    drop(conn);
    h.watch(started?);
    std::thread::Builder::new()
        .name("helper-idle".into())
        .stack_size(crate::reaper::THREAD_STACK)
        .spawn(move || h.close_when_idle(idle))
        .map_err(Error::io("spawn thread", "helper-idle"))?;
    Ok(())
}

/// The shim's one helper (serve sets it up once).
fn install(how: How, conn: Conn) -> &'static Helper {
    HELPER.get_or_init(|| Helper {
        how,
        conn: Mutex::new(conn),
        changed: Condvar::new(),
    })
}

/// Whether requests go to a helper: false in the short-lived `delete`
/// action, which runs them itself (see `berth::Berth::request`).
pub fn running() -> bool {
    HELPER.get().is_some()
}

impl Helper {
    /// Start `berth shim-helper` on a new socket; its pid, or None for
    /// a forked helper, which cannot be started again.
    fn launch(&self, conn: &mut Conn) -> Result<Option<i32>> {
        let (binary, view) = match &self.how {
            How::Exec { binary, view, .. } => (binary, view),
            #[cfg(feature = "in-process")]
            How::Forked => return Ok(None),
        };
        let (shim_end, helper_end) = seqpacket_pair()?;
        let sock = (helper_end.as_raw_fd(), 3);
        let mut cmd = match view {
            Some(v) => {
                let mut c = std::process::Command::new(format!("/proc/self/fd/{VIEW_FD}"));
                c.arg0("berth").env(berth::seal::ORIGINAL_ENV, binary);
                crate::sys::spawn::place_fds(&mut c, [sock, (v.as_raw_fd(), VIEW_FD)], false);
                c
            }
            None => {
                let mut c = std::process::Command::new(binary);
                crate::sys::spawn::place_fds(&mut c, [sock], false);
                c
            }
        };
        cmd.arg("shim-helper")
            .arg("--fd=3")
            .arg(format!("--protocol={}", berth::api::helper::PROTOCOL))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let child = cmd
            .spawn()
            .map_err(Error::io("start the berth helper", binary))?;
        // The reaper collects it (the child handle is never waited on).
        let pid = child.id() as i32;
        conn.sock = Some(shim_end);
        conn.pid = Some(pid);
        conn.last = Some(Instant::now());
        self.changed.notify_all();
        Ok(Some(pid))
    }

    /// Forget the helper `pid` once it exits (killed, say), so that the next
    /// request starts another. Call without the lock held.
    fn watch(&'static self, pid: Option<i32>) {
        let (Some(pid), How::Exec { reaper, .. }) = (pid, &self.how) else {
            return;
        };
        reaper.watch(pid, move |_| {
            let mut c = self.conn.lock().unwrap();
            if c.pid == Some(pid) {
                c.sock = None;
                c.pid = None;
            }
        });
    }

    /// Send one request; a helper that has gone is replaced once.
    fn send(&'static self, payload: &[u8], fds: &[RawFd]) -> Result<()> {
        let mut started = None;
        let mut conn = self.conn.lock().unwrap();
        let mut result = Ok(());
        for attempt in 0..2 {
            if conn.sock.is_none() {
                started = self.launch(&mut conn)?.or(started);
            }
            let Some(sock) = &conn.sock else {
                result = Err(Error::State("the berth helper has exited".into()));
                break;
            };
            let cmsg = [ControlMessage::ScmRights(fds)];
            result = sendmsg::<()>(
                sock.as_raw_fd(),
                &[IoSlice::new(payload)],
                &cmsg,
                MsgFlags::empty(),
                None,
            )
            .map(drop)
            .map_err(Error::sys("send a request to the berth helper"));
            match &result {
                // A message on a dead socket is never delivered, so sending
                // it again to a new helper cannot run it twice.
                Err(Error::Sys { source, .. })
                    if attempt == 0
                        && matches!(
                            source,
                            nix::errno::Errno::EPIPE
                                | nix::errno::Errno::ECONNRESET
                                | nix::errno::Errno::ENOTCONN
                        ) =>
                {
                    conn.sock = None;
                    conn.pid = None;
                }
                _ => break,
            }
        }
        if result.is_ok() {
            conn.busy += 1;
        }
        drop(conn);
        self.watch(started);
        result
    }

    fn done(&self) {
        let mut c = self.conn.lock().unwrap();
        c.busy -= 1;
        c.last = Some(Instant::now());
        self.changed.notify_all();
    }

    /// Close the socket of an exec'd helper `idle` after its last request
    /// ended: the helper exits at that EOF.
    fn close_when_idle(&self, idle: Duration) {
        let mut c = self.conn.lock().unwrap();
        loop {
            let left = match (&c.sock, c.busy, c.last) {
                (Some(_), 0, Some(last)) => idle.saturating_sub(last.elapsed()),
                _ => {
                    c = self.changed.wait(c).unwrap();
                    continue;
                }
            };
            if left.is_zero() {
                c.sock = None;
                c.pid = None;
            } else {
                c = self.changed.wait_timeout(c, left).unwrap().0;
            }
        }
    }
}

/// A request a worker runs.
pub enum Pending {
    /// Forked here (no helper): wait for the pid, then read its reply.
    #[cfg(feature = "in-process")]
    Child(nix::unistd::Pid, File),
    /// Sent to the helper: the worker's exit status and reply come on this
    /// pipe.
    Reply(File, &'static Helper),
}

impl Pending {
    /// The worker's reply; a worker that died without one is an error
    /// naming its exit status.
    pub fn wait(self) -> Result<Reply> {
        let (code, data) = match self {
            #[cfg(feature = "in-process")]
            Pending::Child(pid, out) => {
                let code = loop {
                    match nix::sys::wait::waitpid(pid, None) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(Error::sys("wait for a berth worker")(e)),
                        Ok(ws) => {
                            if let Some((_, c)) = crate::reaper::exit_code(ws) {
                                break c;
                            }
                        }
                    }
                };
                (code, berth::api::helper::drain(&out))
            }
            Pending::Reply(mut r, h) => {
                let mut data = Vec::new();
                let read = r.read_to_end(&mut data);
                h.done();
                read.map_err(Error::io("read the reply from", "the berth helper"))?;
                if data.len() < 4 {
                    return Err(Error::invalid(
                        "berth helper reply",
                        "none: the helper exited before the request ended",
                    ));
                }
                let code = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
                (code, data.split_off(4))
            }
        };
        if data.is_empty() {
            return Ok(Reply::Err {
                kind: ErrorKind::Failed,
                message: format!("berth worker exited with status {code} and no reply"),
            });
        }
        serde_json::from_slice(&data)
            .map_err(|e| Error::invalid("berth worker reply", e.to_string()))
    }
}

/// Start one request with `stdio`: in the helper, or (the in-process
/// shim's `delete` action, single-threaded, no helper) in a worker forked
/// right here.
pub fn start(job: &Job, stdio: Stdio) -> Result<Pending> {
    let json =
        serde_json::to_vec(job).map_err(|e| Error::invalid("berth request", e.to_string()))?;
    let Some(h) = HELPER.get() else {
        return fork_here(&json, stdio);
    };
    let (reply_r, reply_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
    let mut payload = vec![stdio_mask(&stdio)];
    payload.extend_from_slice(&json);
    if payload.len() > MAX_REQUEST {
        return Err(Error::invalid("berth request", "too long"));
    }
    let mut fds: Vec<RawFd> = stdio.iter().flatten().map(|f| f.as_raw_fd()).collect();
    fds.push(reply_w.as_raw_fd());
    h.send(&payload, &fds)?;
    // Only the helper holds the write end now: its death is an EOF here,
    // and only the worker holds the stdio.
    drop((stdio, reply_w));
    Ok(Pending::Reply(File::from(reply_r), h))
}

#[cfg(feature = "in-process")]
fn fork_here(json: &[u8], stdio: Stdio) -> Result<Pending> {
    use crate::sys::fork::{fork, ForkResult};
    let (out_r, out_w) =
        berth::api::helper::output_pipe().map_err(|e| Error::State(e.to_string()))?;
    // Only the single-threaded actions run without a helper.
    match fork().map_err(Error::sys("fork a berth worker"))? {
        ForkResult::Child => {
            drop(out_r);
            berth::api::helper::run_worker(json, stdio, out_w)
        }
        ForkResult::Parent { child } => Ok(Pending::Child(child, out_r)),
    }
}

#[cfg(not(feature = "in-process"))]
fn fork_here(_: &[u8], _: Stdio) -> Result<Pending> {
    Err(Error::State(
        "no berth helper runs, and this shim was built without in-process berth".into(),
    ))
}
