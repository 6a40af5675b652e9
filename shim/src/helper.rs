//! berth as a library inside the shim, without exec'ing a runtime binary.
//!
//! berth's commands fork and clone, and change process-wide state (umask,
//! cwd, signal dispositions, globals such as its log). None of that is safe
//! in the serving shim, whose ttrpc server runs threads: a child forked from
//! a threaded process may inherit a lock another thread held. So `serve`
//! forks this helper first, while the shim is still single-threaded. The
//! helper stays single-threaded: it reads typed requests (`berth::api`'s
//! `Request`, as JSON, with the runtime it is for) from a socket and forks
//! one worker per request, which sets up stdio as a `berth` process would
//! have it and calls `Runtime::handle`. A worker per request keeps every
//! operation's process-wide state apart, as separate berth processes are,
//! and lets slow ones (checkpoint) run beside quick ones. The worker writes
//! its `Reply` into a pipe to the helper; the helper reaps it and sends its
//! exit status and that reply back on the pipe that came with the request.
//!
//! A container init cloned by a worker is re-parented to the shim (the
//! subreaper; the helper is not one) when the worker exits, as it is when an
//! exec'd `berth create` exits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, Pid};

use berth::api::{ErrorKind, Reply, Request, Runtime};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::reaper::exit_code;
use crate::sys::fork::{close_all_from_3_but, exit_now, fork, ForkResult};
use crate::sys::signal::set_default;
use crate::sys::socket::recv_with_fds;

/// The shim's end of the helper's request socket, once the helper runs.
static HELPER: OnceLock<OwnedFd> = OnceLock::new();

/// A request as JSON plus a byte of framing; requests are small (an update's
/// resources are the largest).
const MAX_REQUEST: usize = 64 * 1024;

/// What a worker runs: one request of one runtime, logging to `log`.
#[derive(Serialize, Deserialize)]
pub struct Job {
    pub runtime: Runtime,
    pub log: PathBuf,
    pub request: Request,
}

/// The three stdio fds of a command; None is /dev/null.
pub type Stdio = [Option<OwnedFd>; 3];

/// Fork the helper. Must run before the shim starts any thread.
pub fn spawn() -> Result<()> {
    let (shim_end, helper_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::sys("socketpair for the berth helper"))?;
    // The caller guarantees the process is single-threaded.
    let shim = nix::unistd::getpid();
    match fork().map_err(Error::sys("fork the berth helper"))? {
        ForkResult::Child => {
            drop(shim_end);
            helper_main(helper_end, shim)
        }
        ForkResult::Parent { .. } => {
            drop(helper_end);
            let _ = HELPER.set(shim_end);
            Ok(())
        }
    }
}

/// A request a worker runs.
pub enum Pending {
    /// Forked here (no helper): wait for the pid, then read its reply.
    Child(Pid, File),
    /// Sent to the helper: the worker's exit status and reply come on this
    /// pipe.
    Reply(File),
}

impl Pending {
    /// The worker's reply; a worker that died without one is an error
    /// naming its exit status.
    pub fn wait(self) -> Result<Reply> {
        let (code, data) = match self {
            Pending::Child(pid, out) => {
                let code = loop {
                    match waitpid(pid, None) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(Error::sys("wait for a berth worker")(e)),
                        Ok(ws) => {
                            if let Some((_, c)) = exit_code(ws) {
                                break c;
                            }
                        }
                    }
                };
                (code, drain(&out))
            }
            Pending::Reply(mut r) => {
                let mut data = Vec::new();
                r.read_to_end(&mut data)
                    .map_err(Error::io("read the reply from", "the berth helper"))?;
                if data.len() < 4 {
                    return Err(Error::invalid("berth helper reply", "truncated"));
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

/// A pipe whose read end the helper drains once the worker has exited,
/// both ends non-blocking: a reply is far smaller than a pipe's buffer, and
/// the worker must never block on it.
fn reply_pipe() -> Result<(File, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .map_err(Error::sys("pipe"))?;
    Ok((File::from(r), w))
}

/// What a worker wrote before it exited.
fn drain(mut r: &File) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = r.read(&mut buf) {
        data.extend_from_slice(&buf[..n]);
    }
    data
}

/// Start one request with `stdio`. Without a helper (the short-lived
/// `delete` action, single-threaded) the worker is forked right here.
pub fn start(job: &Job, stdio: Stdio) -> Result<Pending> {
    let json =
        serde_json::to_vec(job).map_err(|e| Error::invalid("berth request", e.to_string()))?;
    let Some(sock) = HELPER.get() else {
        let (out_r, out_w) = reply_pipe()?;
        // Only the single-threaded actions run without a helper.
        return match fork().map_err(Error::sys("fork a berth worker"))? {
            ForkResult::Child => {
                drop(out_r);
                worker(&json, stdio, out_w)
            }
            ForkResult::Parent { child } => Ok(Pending::Child(child, out_r)),
        };
    };
    let (reply_r, reply_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
    let mut payload = vec![stdio
        .iter()
        .enumerate()
        .fold(0u8, |m, (i, f)| m | (u8::from(f.is_some()) << i))];
    payload.extend_from_slice(&json);
    if payload.len() > MAX_REQUEST {
        return Err(Error::invalid("berth request", "too long"));
    }
    let mut fds: Vec<RawFd> = stdio.iter().flatten().map(|f| f.as_raw_fd()).collect();
    fds.push(reply_w.as_raw_fd());
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map_err(Error::sys("send a request to the berth helper"))?;
    // Only the helper holds the write end now: its death is an EOF here,
    // and only the worker holds the stdio.
    Ok(Pending::Reply(File::from(reply_r)))
}

fn helper_main(sock: OwnedFd, shim: Pid) -> ! {
    // Nothing of the shim's but our socket and stdio: the shim's listener
    // in particular must close when the shim exits.
    close_all_from_3_but(sock.as_fd());
    // The helper must not outlive the shim that would send it requests.
    let _ = prctl::set_pdeathsig(Signal::SIGKILL);
    let _ = prctl::set_name(c"berth-helper");
    if nix::unistd::getppid() != shim {
        exit_now(0);
    }
    match helper_loop(&sock) {
        Ok(()) => exit_now(0),
        Err(e) => {
            eprintln!("berth shim helper: {e}");
            exit_now(1)
        }
    }
}

fn helper_loop(sock: &OwnedFd) -> Result<()> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(Error::sys("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(Error::sys("signalfd"))?;
    // Worker pid → the request's reply pipe and the worker's output.
    let mut replies: HashMap<Pid, (File, File)> = HashMap::new();
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut open = true;
    while open || !replies.is_empty() {
        let mut pfds = vec![PollFd::new(sigfd.as_fd(), PollFlags::POLLIN)];
        if open {
            pfds.push(PollFd::new(sock.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut pfds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready = |p: &PollFd| p.revents().is_some_and(|r| !r.is_empty());
        let (reaped, requested) = (ready(&pfds[0]), pfds.get(1).is_some_and(ready));
        drop(pfds);
        if requested {
            match receive(sock, &mut buf)? {
                None => open = false,
                Some((job, stdio, reply)) => {
                    let (out_r, out_w) = reply_pipe()?;
                    // The helper is single-threaded.
                    match fork() {
                        Ok(ForkResult::Child) => {
                            drop((reply, out_r));
                            worker(&job, stdio, out_w)
                        }
                        Ok(ForkResult::Parent { child }) => {
                            replies.insert(child, (reply, out_r));
                        }
                        Err(e) => {
                            eprintln!("berth shim helper: fork: {e}");
                            let _ = (&reply).write_all(&(128 + libc::SIGKILL).to_ne_bytes());
                        }
                    }
                }
            }
        }
        if reaped {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            while let Ok(ws) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                let Some((pid, code)) = exit_code(ws) else {
                    break;
                };
                if let Some((mut r, out)) = replies.remove(&pid) {
                    let mut msg = code.to_ne_bytes().to_vec();
                    msg.extend(drain(&out));
                    // The shim thread may have gone; nothing to do then.
                    let _ = r.write_all(&msg);
                }
            }
        }
    }
    Ok(())
}

type Received = (Vec<u8>, Stdio, File);

/// One request, or None at EOF (the shim closed its end or died).
fn receive(sock: &OwnedFd, buf: &mut [u8]) -> Result<Option<Received>> {
    let (len, mut fds) =
        recv_with_fds(sock.as_fd(), buf, 4).map_err(Error::sys("receive a berth request"))?;
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    let (Some(&mask), Some(reply)) = (buf.first(), fds.pop()) else {
        return Err(Error::invalid("berth request", "malformed"));
    };
    let reply = File::from(reply);
    let mut it = fds.into_iter();
    let stdio: Stdio = std::array::from_fn(|i| (mask & (1 << i) != 0).then(|| it.next()).flatten());
    Ok(Some((buf[1..len].to_vec(), stdio, reply)))
}

/// The forked worker: become what an exec'd `berth` would be, run the
/// request, and write its reply to `out`.
fn worker(job: &[u8], stdio: Stdio, out: OwnedFd) -> ! {
    for (i, f) in stdio.iter().enumerate() {
        let null;
        let fd = match f {
            Some(f) => f.as_fd(),
            None => match File::options().read(true).write(true).open("/dev/null") {
                Ok(f) => {
                    null = f;
                    null.as_fd()
                }
                Err(_) => exit_now(127),
            },
        };
        // Ours are all above 2, so the copy never keeps a CLOEXEC flag.
        let _ = match i {
            0 => dup2_stdin(fd),
            1 => dup2_stdout(fd),
            _ => dup2_stderr(fd),
        };
    }
    drop(stdio);
    close_all_from_3_but(out.as_fd());
    // exec would reset handled signals; std's spawn also resets the mask and
    // SIGPIPE (which the shim ignores). Children of berth inherit this.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for s in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        let _ = set_default(s);
    }
    let _ = prctl::set_pdeathsig(None);
    let _ = prctl::set_name(c"berth");
    let reply = match serde_json::from_slice::<Job>(job) {
        Ok(j) => {
            // An unusable log loses the lines only: the reply still says it all.
            let _ = berth::logging::init(Some(j.log), berth::logging::Format::Json, false);
            j.runtime.reply(j.request)
        }
        Err(e) => Reply::Err {
            kind: ErrorKind::InvalidConfig { field: None },
            message: format!("berth request: {e}"),
        },
    };
    if let Reply::Err { message, .. } = &reply {
        // The log keeps what a `berth` process would have logged.
        berth::logging::error(message);
    }
    let data = serde_json::to_vec(&reply).unwrap_or_default();
    let code = i32::from(File::from(out).write_all(&data).is_err());
    let _ = std::io::stdout().flush();
    // Without running the shim's exit-time code (there is none of berth's
    // that matters once stdout is flushed).
    exit_now(code)
}
