//! berth as a library inside the shim, without exec'ing a runtime binary.
//!
//! berth's commands fork and clone, and change process-wide state (umask,
//! cwd, signal dispositions, globals such as its log). None of that is safe
//! in the serving shim, whose ttrpc server runs threads: a child forked from
//! a threaded process may inherit a lock another thread held. So `serve`
//! forks this helper first, while the shim is still single-threaded. The
//! helper stays single-threaded: it reads requests from a socket and forks
//! one worker per request, which sets up stdio and runs berth's CLI code on
//! the request's arguments, exactly what a `berth` process would do after
//! exec. A worker per request keeps every command's state apart, as
//! separate berth processes are, and lets slow commands (checkpoint) run
//! beside quick ones. The helper reaps its workers and sends each exit
//! status back on the pipe that came with the request.
//!
//! A container init cloned by a worker is re-parented to the shim (the
//! subreaper; the helper is not one) when the worker exits, as it is when an
//! exec'd `berth create` exits.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::error::{Error, Result};

/// The shim's end of the helper's request socket, once the helper runs.
static HELPER: OnceLock<OwnedFd> = OnceLock::new();

/// Arguments plus a few bytes of framing; berth command lines are short.
const MAX_REQUEST: usize = 64 * 1024;

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
    // SAFETY: the caller guarantees the process is single-threaded.
    let shim = nix::unistd::getpid();
    match unsafe { fork() }.map_err(Error::sys("fork the berth helper"))? {
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

/// A command a worker runs.
pub enum Pending {
    /// Forked here (no helper): wait for the pid.
    Child(Pid),
    /// Sent to the helper: its exit status comes on this pipe.
    Reply(File),
}

impl Pending {
    /// The exit code, 128 + signal if the worker was killed.
    pub fn wait(self) -> Result<i32> {
        match self {
            Pending::Child(pid) => loop {
                match waitpid(pid, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => break Err(Error::sys("wait for a berth worker")(e)),
                    Ok(ws) => {
                        if let Some((_, c)) = exit_code(ws) {
                            break Ok(c);
                        }
                    }
                }
            },
            Pending::Reply(mut r) => {
                let mut code = [0u8; 4];
                r.read_exact(&mut code)
                    .map_err(Error::io("read the exit status from", "the berth helper"))?;
                Ok(i32::from_ne_bytes(code))
            }
        }
    }
}

/// Start one berth command (`argv[0]` is the program name) with `stdio`.
/// Without a helper (the short-lived `delete` action, single-threaded) the
/// worker is forked right here.
pub fn start(argv: &[&OsStr], stdio: Stdio) -> Result<Pending> {
    let Some(sock) = HELPER.get() else {
        // SAFETY: only the single-threaded actions run without a helper.
        return match unsafe { fork() }.map_err(Error::sys("fork a berth worker"))? {
            ForkResult::Child => worker(argv.iter().map(|a| a.to_os_string()).collect(), stdio),
            ForkResult::Parent { child } => Ok(Pending::Child(child)),
        };
    };
    let (reply_r, reply_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
    let mut payload = vec![stdio
        .iter()
        .enumerate()
        .fold(0u8, |m, (i, f)| m | (u8::from(f.is_some()) << i))];
    for a in argv {
        payload.extend_from_slice(a.as_bytes());
        payload.push(0);
    }
    if payload.len() > MAX_REQUEST {
        return Err(Error::invalid("berth command", "argument list too long"));
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

/// Exit code as containerd expects it: the status, or 128 + signal.
fn exit_code(ws: WaitStatus) -> Option<(Pid, i32)> {
    match ws {
        WaitStatus::Exited(pid, c) => Some((pid, c)),
        WaitStatus::Signaled(pid, s, _) => Some((pid, 128 + s as i32)),
        _ => None,
    }
}

fn helper_main(sock: OwnedFd, shim: Pid) -> ! {
    let fd = sock.as_raw_fd();
    // Nothing of the shim's but our socket and stdio: the shim's listener
    // in particular must close when the shim exits.
    close_range(3, fd as u32 - 1);
    close_range(fd as u32 + 1, u32::MAX);
    // SAFETY: prctl with integer arguments; the helper must not outlive the
    // shim that would send it requests.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"berth-helper".as_ptr(), 0, 0, 0);
    }
    if nix::unistd::getppid() != shim {
        // SAFETY: plain exit of this forked process.
        unsafe { libc::_exit(0) };
    }
    match helper_loop(&sock) {
        Ok(()) => unsafe { libc::_exit(0) },
        Err(e) => {
            eprintln!("berth shim helper: {e}");
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
    }
}

fn helper_loop(sock: &OwnedFd) -> Result<()> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(Error::sys("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(Error::sys("signalfd"))?;
    // Worker pid → the request's reply pipe.
    let mut replies: HashMap<Pid, File> = HashMap::new();
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut open = true;
    while open || !replies.is_empty() {
        let mut pfds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if open {
            pfds.push(libc::pollfd {
                fd: sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: pfds is a valid array of pollfd.
        if unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as _, -1) } < 0 {
            continue;
        }
        if pfds.get(1).is_some_and(|p| p.revents != 0) {
            match receive(sock, &mut buf)? {
                None => open = false,
                Some((argv, stdio, reply)) => {
                    // SAFETY: the helper is single-threaded.
                    match unsafe { fork() } {
                        Ok(ForkResult::Child) => {
                            drop(reply);
                            worker(argv, stdio)
                        }
                        Ok(ForkResult::Parent { child }) => {
                            replies.insert(child, reply);
                        }
                        Err(e) => {
                            eprintln!("berth shim helper: fork: {e}");
                            let _ = (&reply).write_all(&(128 + libc::SIGKILL).to_ne_bytes());
                        }
                    }
                }
            }
        }
        if pfds[0].revents != 0 {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            while let Ok(ws) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                let Some((pid, code)) = exit_code(ws) else {
                    break;
                };
                if let Some(mut r) = replies.remove(&pid) {
                    // The shim thread may have gone; nothing to do then.
                    let _ = r.write_all(&code.to_ne_bytes());
                }
            }
        }
    }
    Ok(())
}

type Received = (Vec<OsString>, Stdio, File);

/// One request, or None at EOF (the shim closed its end or died).
fn receive(sock: &OwnedFd, buf: &mut [u8]) -> Result<Option<Received>> {
    let mut cspace = nix::cmsg_space!([RawFd; 4]);
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cspace),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(Error::sys("receive a berth request"))?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(Error::sys("read control message"))? {
            if let ControlMessageOwned::ScmRights(r) = c {
                // SAFETY: SCM_RIGHTS gave us these fds.
                fds.extend(r.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
            }
        }
        (msg.bytes, fds)
    };
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    let mut fds = fds;
    let (Some(&mask), Some(reply)) = (buf.first(), fds.pop()) else {
        return Err(Error::invalid("berth request", "malformed"));
    };
    let reply = File::from(reply);
    let mut it = fds.into_iter();
    let stdio: Stdio = std::array::from_fn(|i| (mask & (1 << i) != 0).then(|| it.next()).flatten());
    let argv = buf[1..len]
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    Ok(Some((argv, stdio, reply)))
}

fn close_range(first: u32, last: u32) {
    if first <= last {
        // SAFETY: closing fds this process owns no Rust object for (or that
        // were inherited).
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    }
}

/// The forked worker: become what an exec'd `berth` would be, then run it.
fn worker(argv: Vec<OsString>, stdio: Stdio) -> ! {
    for (i, f) in stdio.iter().enumerate() {
        let null;
        let fd = match f {
            Some(f) => f.as_fd(),
            None => match File::options().read(true).write(true).open("/dev/null") {
                Ok(f) => {
                    null = f;
                    null.as_fd()
                }
                // SAFETY: exit of a forked child.
                Err(_) => unsafe { libc::_exit(127) },
            },
        };
        // SAFETY: dup2 of a valid fd onto 0..=2 (ours are all above 2, so
        // the copy never keeps a CLOEXEC flag).
        unsafe { libc::dup2(fd.as_raw_fd(), i as RawFd) };
    }
    drop(stdio);
    close_range(3, u32::MAX);
    // exec would reset handled signals; std's spawn also resets the mask and
    // SIGPIPE (which the shim ignores). Children of berth inherit this.
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for s in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: restoring default dispositions in a single-threaded child.
        unsafe { libc::signal(s as libc::c_int, libc::SIG_DFL) };
    }
    // SAFETY: prctl with valid arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"berth".as_ptr(), 0, 0, 0);
    }
    let code = berth::cli::main_with(argv);
    let _ = std::io::stdout().flush();
    // SAFETY: exit without running the shim's exit-time code (there is none
    // of berth's that matters once stdout is flushed).
    unsafe { libc::_exit(code) }
}
