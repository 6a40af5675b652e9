//! `run` and `exec` in the foreground: berth stays the process's parent,
//! forwards the signals it receives to it, relays its terminal when berth
//! allocated one, and returns its exit status.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Result};

/// Block every catchable signal, so each is received by sigwait and
/// forwarded rather than acted on by berth itself.
pub fn block() -> Result<SigSet> {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
    ] {
        set.remove(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .ctx(|| "block signals")?;
    Ok(set)
}

/// Forward signals to `pid` until it exits; returns its exit status
/// (128+N for a signal, as a shell reports it).
pub fn wait_forwarding(set: &SigSet, pid: i32) -> i32 {
    let child = Pid::from_raw(pid);
    loop {
        if let Some(code) = reap(child) {
            return code;
        }
        let Ok(sig) = set.wait() else { continue };
        if sig == Signal::SIGCHLD {
            continue;
        }
        let _ = nix::sys::signal::kill(child, sig);
    }
}

fn reap(child: Pid) -> Option<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == child => return Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == child => return Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Some(255),
        }
    }
}

/// Like `wait_forwarding`, while relaying between our stdio and the pty
/// master of a container started with `terminal: true` and no console
/// socket (what `runc run` does for an interactive shell).
pub fn wait_relaying(set: &SigSet, pid: i32, master: std::os::fd::OwnedFd) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::{AsFd, AsRawFd};

    let child = Pid::from_raw(pid);
    let Ok(sfd) = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        return wait_forwarding(set, pid);
    };
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let (stdin, stdout) = (stdin.as_fd(), stdout.as_fd());
    let _raw = RawMode::enter(stdin);
    crate::sys::tty::copy_winsize(stdin, master.as_fd());
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if master_open {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open && master_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        if ready.get(1) == Some(&true) && master_open {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => write_all(stdout, &buf[..n]),
            }
        }
        if ready.get(2) == Some(&true) {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_all(master.as_fd(), &buf[..n]),
            }
        }
        if ready[0] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => crate::sys::tty::copy_winsize(stdin, master.as_fd()),
                    s => {
                        let _ = nix::sys::signal::kill(child, s);
                    }
                }
            }
        }
        if let Some(code) = reap(child) {
            // Whatever the container wrote last is still in the master.
            while master_open {
                match nix::unistd::read(master.as_fd(), &mut buf) {
                    Ok(n) if n > 0 => write_all(stdout, &buf[..n]),
                    _ => master_open = false,
                }
            }
            let _ = master.as_raw_fd();
            return code;
        }
    }
}

fn write_all(fd: std::os::fd::BorrowedFd, mut b: &[u8]) {
    while !b.is_empty() {
        match nix::unistd::write(fd, b) {
            Ok(n) if n > 0 => b = &b[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// Our terminal in raw mode for the life of the value, so keystrokes
/// (Ctrl-C included) go to the container's terminal, not to berth.
struct RawMode<'a> {
    fd: std::os::fd::BorrowedFd<'a>,
    saved: Option<nix::sys::termios::Termios>,
}

impl<'a> RawMode<'a> {
    fn enter(fd: std::os::fd::BorrowedFd<'a>) -> RawMode<'a> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let saved = tcgetattr(fd).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(fd, SetArg::TCSANOW, &raw);
        }
        RawMode { fd, saved }
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(self.fd, nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}
