//! A process that serves [`Request`]s for the containerd shim.
//!
//! The shim's threads must never fork berth's operations themselves (a child
//! forked from a threaded process may inherit a lock another thread held),
//! and exec'ing a `berth` command per request costs an exec and a sealed
//! re-exec each time. So the shim keeps one single-threaded helper: the
//! `berth shim-helper` command it starts (or, in its `in-process` build, a
//! copy of itself forked before its threads). The helper reads requests
//! from a SEQPACKET socket and forks one worker per request, which sets up
//! stdio as a `berth` process would have it and calls [`Runtime::reply`]. A
//! worker per request keeps every operation's process-wide state (umask,
//! cwd, signal dispositions, the log) apart, as separate berth processes
//! are, and lets slow ones (checkpoint) run beside quick ones.
//!
//! One message is a [`Job`] as JSON after a byte whose low three bits say
//! which of stdin, stdout and stderr come with it as fds (a missing one is
//! /dev/null); the last fd is the write end of the reply pipe. When the
//! worker has exited, the helper writes its exit status (4 bytes, native
//! order) and the worker's [`Reply`] as JSON into that pipe and closes it.
//! The helper exits at the socket's EOF once its workers are done: the shim
//! closing its end (idle, or gone) is all it takes.
//!
//! A container init cloned by a worker is re-parented to the shim (the
//! subreaper; the helper is not one) when the worker exits, as it is when an
//! exec'd `berth create` exits.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, Pid};
use serde::{Deserialize, Serialize};

use super::{ErrorKind, Reply, Request, Runtime};
use crate::error::{Context, Error, Result};
use crate::sys;

/// Bumped whenever [`Job`], [`Request`] or [`Reply`] change shape: the shim
/// passes the version it speaks and an installed berth of another refuses
/// at once, instead of misreading requests.
pub const PROTOCOL: u32 = 1;

/// The helper's process name (comm), which `ps` and the shim's tests show.
pub const NAME: &std::ffi::CStr = c"berth-helper";

/// The longest message: a request as JSON plus its byte of framing.
/// Requests are small (an update's resources are the largest).
pub const MAX_REQUEST: usize = 64 * 1024;

/// What a worker runs: one request of one runtime, logging to `log`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub runtime: Runtime,
    pub log: PathBuf,
    pub request: Request,
}

/// The three stdio fds of a request; None is /dev/null.
pub type Stdio = [Option<OwnedFd>; 3];

/// The framing byte for `stdio`: bit i set when fd i comes with the message.
pub fn stdio_mask(stdio: &Stdio) -> u8 {
    stdio
        .iter()
        .enumerate()
        .fold(0u8, |m, (i, f)| m | (u8::from(f.is_some()) << i))
}

/// Serve requests on `sock` until its EOF and the last worker's exit. The
/// caller must be single-threaded (it forks), and own nothing it needs
/// beyond `sock` and its stdio.
pub fn serve(sock: &OwnedFd) -> Result<()> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().ctx(|| "block SIGCHLD")?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx(|| "signalfd for SIGCHLD")?;
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
            match receive(sock.as_fd(), &mut buf)? {
                None => open = false,
                Some((job, stdio, reply)) => {
                    let (out_r, out_w) = output_pipe()?;
                    // Single-threaded, as the caller promised.
                    match sys::clone::fork() {
                        Ok(0) => {
                            drop((reply, out_r));
                            run_worker(&job, stdio, out_w)
                        }
                        Ok(child) => {
                            replies.insert(Pid::from_raw(child), (reply, out_r));
                        }
                        Err(e) => {
                            eprintln!("berth helper: fork: {e}");
                            let _ = (&reply).write_all(&(128 + libc::SIGKILL).to_ne_bytes());
                        }
                    }
                }
            }
        }
        if reaped {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            while let Ok(ws) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                let Some((pid, code)) = exit_status(ws) else {
                    break;
                };
                if let Some((mut r, out)) = replies.remove(&pid) {
                    let mut msg = code.to_ne_bytes().to_vec();
                    msg.extend(drain(&out));
                    // The shim's caller may have gone; nothing to do then.
                    let _ = r.write_all(&msg);
                }
            }
        }
    }
    Ok(())
}

/// `berth shim-helper`: serve on the inherited socket `fd`, with nothing
/// else of the shim's open. Call it single-threaded, after sealing.
pub fn serve_inherited(fd: RawFd) -> Result<()> {
    let sock = sys::adopt_fd(fd).ctx(|| format!("the shim's socket, fd {fd}"))?;
    // Nothing of the shim's but this socket (and stdio).
    crate::process::close_fds_except(3, &[sock.as_raw_fd()]);
    let _ = nix::sys::prctl::set_name(NAME);
    serve(&sock)
}

/// The exit status as containerd counts it: the code, or 128 + signal;
/// None for a stop or continue.
pub fn exit_status(ws: WaitStatus) -> Option<(Pid, i32)> {
    match ws {
        WaitStatus::Exited(pid, c) => Some((pid, c)),
        WaitStatus::Signaled(pid, s, _) => Some((pid, 128 + s as i32)),
        _ => None,
    }
}

/// A pipe for the worker's reply, both ends non-blocking: a reply is far
/// smaller than a pipe's buffer, and the worker must never block on it.
/// The helper drains it once the worker has exited.
pub fn output_pipe() -> Result<(File, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
        .ctx(|| "pipe for a worker's reply")?;
    Ok((File::from(r), w))
}

/// What a worker wrote before it exited.
pub fn drain(mut r: &File) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = r.read(&mut buf) {
        data.extend_from_slice(&buf[..n]);
    }
    data
}

type Received = (Vec<u8>, Stdio, File);

/// One request, or None at EOF (the shim closed its end or died).
fn receive(sock: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Option<Received>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)
    .ctx(|| "receive a request from the shim")?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(r) = m {
            fds.extend(r);
        }
    }
    let len = msg.bytes;
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    let (Some(&mask), Some(reply)) = (buf.first(), fds.pop()) else {
        return Err(Error::Invalid(
            "a request from the shim without its framing or reply pipe".into(),
        ));
    };
    let reply = File::from(reply);
    let mut it = fds.into_iter();
    let stdio: Stdio = std::array::from_fn(|i| (mask & (1 << i) != 0).then(|| it.next()).flatten());
    Ok(Some((buf[1..len].to_vec(), stdio, reply)))
}

/// A forked worker: become what an exec'd `berth` would be, run `job` (a
/// [`Job`] as JSON), write its [`Reply`] to `out` and exit. The caller must
/// be a child forked from a single-threaded process.
pub fn run_worker(job: &[u8], stdio: Stdio, out: OwnedFd) -> ! {
    for (i, f) in stdio.iter().enumerate() {
        let null;
        let fd = match f {
            Some(f) => f.as_fd(),
            None => match File::options().read(true).write(true).open("/dev/null") {
                Ok(f) => {
                    null = f;
                    null.as_fd()
                }
                Err(_) => sys::proc::exit_now(127),
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
    crate::process::close_fds_except(3, &[out.as_raw_fd()]);
    // exec would reset handled signals; std's spawn also resets the mask and
    // SIGPIPE (which a shim ignores). Children of berth inherit this.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        let _ = sys::signal::set_action(s, &dfl);
    }
    let _ = nix::sys::prctl::set_pdeathsig(None);
    let _ = nix::sys::prctl::set_name(c"berth");
    let reply = match serde_json::from_slice::<Job>(job) {
        Ok(j) => {
            // An unusable log loses the lines only: the reply still says it all.
            let _ = crate::logging::init(Some(j.log), crate::logging::Format::Json, false);
            j.runtime.reply(j.request)
        }
        Err(e) => Reply::Err {
            kind: ErrorKind::InvalidConfig { field: None },
            message: format!("berth request: {e}"),
        },
    };
    if let Reply::Err { message, .. } = &reply {
        // The log keeps what a `berth` process would have logged.
        crate::logging::error(message);
    }
    let data = serde_json::to_vec(&reply).unwrap_or_default();
    let code = i32::from(File::from(out).write_all(&data).is_err());
    let _ = std::io::stdout().flush();
    // No exit handlers: nothing of berth's needs them once stdout is flushed.
    sys::proc::exit_now(code)
}
