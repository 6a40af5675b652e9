//! `run` in the foreground: berth stays the container's parent, forwards the
//! signals it receives to the container, and returns its exit status.

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
