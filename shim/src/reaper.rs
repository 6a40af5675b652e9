//! The shim's one event thread. The shim is a subreaper: container inits
//! (re-parented to it once `berth create` exits) and the `berth` commands
//! it runs are all its children. The thread waits on an epoll set holding a
//! signalfd for SIGCHLD and any other fd a caller registers (OOM
//! notifications), and reaps every exited child. Exits are routed to
//! whoever registered the pid, or kept until someone asks for them, since a
//! short-lived child can be reaped before its spawner gets to register it.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// The stack of the shim's own threads (stdin copy, console, reaper,
/// events): they only block in syscalls, and each default 2 MiB stack
/// would add to the shim's resident memory.
pub(crate) const THREAD_STACK: usize = 64 * 1024;

type Watcher = Box<dyn FnOnce(i32) + Send>;
/// Called when its fd is readable; returns whether to keep watching.
type FdWatcher = Box<dyn FnMut(&OwnedFd) -> bool + Send>;

const SIGCHLD_TOKEN: u64 = u64::MAX;

#[derive(Default)]
struct Inner {
    /// Exit codes nobody claimed yet.
    exits: HashMap<i32, i32>,
    watchers: HashMap<i32, Watcher>,
    fds: HashMap<u64, (OwnedFd, FdWatcher)>,
    /// Tokens unwatched while their callback was running.
    cancelled: HashSet<u64>,
    next_token: u64,
}

pub struct Reaper {
    inner: Mutex<Inner>,
    cv: Condvar,
    epoll: Epoll,
    sigfd: SignalFd,
}

fn sigchld() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set
}

/// Block SIGCHLD in the calling thread before any thread exists: threads
/// inherit the mask, so SIGCHLD is only ever seen through the signalfd.
/// Children get a clean mask from std's spawn.
pub fn block_sigchld() -> nix::Result<()> {
    sigchld().thread_block()
}

/// Exit code as containerd expects it: the status, or 128 + signal (the
/// helper reports its workers' the same way).
pub use berth::api::helper::exit_status as exit_code;

impl Reaper {
    pub fn spawn() -> Result<Arc<Reaper>> {
        let epoll =
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(Error::sys("epoll_create"))?;
        let sigfd =
            SignalFd::with_flags(&sigchld(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
                .map_err(Error::sys("signalfd for SIGCHLD"))?;
        epoll
            .add(
                sigfd.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, SIGCHLD_TOKEN),
            )
            .map_err(Error::sys("epoll add signalfd"))?;
        let r = Arc::new(Reaper {
            inner: Mutex::default(),
            cv: Condvar::new(),
            epoll,
            sigfd,
        });
        let me = Arc::clone(&r);
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(THREAD_STACK)
            .spawn(move || me.run())
            .map_err(Error::io("spawn thread", "reaper"))?;
        Ok(r)
    }

    fn run(&self) {
        let mut events = [EpollEvent::empty(); 8];
        loop {
            let n = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("berth shim: epoll_wait: {e}");
                    return;
                }
            };
            for ev in &events[..n] {
                if ev.data() == SIGCHLD_TOKEN {
                    self.reap();
                } else {
                    self.fd_ready(ev.data());
                }
            }
        }
    }

    fn reap(&self) {
        // Signals coalesce: drain the signalfd, then reap all that is ready.
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(ws) => {
                    if let Some((pid, c)) = exit_code(ws) {
                        self.exited(pid.as_raw(), c);
                    }
                }
            }
        }
    }

    fn fd_ready(&self, token: u64) {
        // Out of the map while it runs: the callback may publish an event
        // (a blocking call) and must not hold the lock meanwhile.
        let Some((fd, mut f)) = self.inner.lock().unwrap().fds.remove(&token) else {
            return;
        };
        let keep = f(&fd);
        let mut g = self.inner.lock().unwrap();
        if keep && !g.cancelled.remove(&token) {
            g.fds.insert(token, (fd, f));
        } else {
            let _ = self.epoll.delete(fd.as_fd());
        }
    }

    fn exited(&self, pid: i32, code: i32) {
        let mut g = self.inner.lock().unwrap();
        if let Some(w) = g.watchers.remove(&pid) {
            drop(g);
            w(code);
            return;
        }
        g.exits.insert(pid, code);
        self.cv.notify_all();
    }

    /// Block until `pid` (a child we spawned) exits; returns its exit code.
    pub fn wait(&self, pid: i32) -> i32 {
        let mut g = self.inner.lock().unwrap();
        loop {
            if let Some(c) = g.exits.remove(&pid) {
                return c;
            }
            g = self.cv.wait(g).unwrap();
        }
    }

    /// Call `f` with the exit code of `pid` when it exits (right away if it
    /// already has).
    pub fn watch(&self, pid: i32, f: impl FnOnce(i32) + Send + 'static) {
        let mut g = self.inner.lock().unwrap();
        if let Some(c) = g.exits.remove(&pid) {
            drop(g);
            f(c);
            return;
        }
        g.watchers.insert(pid, Box::new(f));
    }

    /// Call `f` whenever `fd` is readable, until it returns false or
    /// `unwatch_fd` is called with the returned token.
    pub fn watch_fd(
        &self,
        fd: OwnedFd,
        f: impl FnMut(&OwnedFd) -> bool + Send + 'static,
    ) -> Result<u64> {
        let mut g = self.inner.lock().unwrap();
        let token = g.next_token;
        g.next_token += 1;
        self.epoll
            .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
            .map_err(Error::sys("epoll add"))?;
        g.fds.insert(token, (fd, Box::new(f)));
        Ok(token)
    }

    pub fn unwatch_fd(&self, token: u64) {
        let mut g = self.inner.lock().unwrap();
        match g.fds.remove(&token) {
            Some((fd, _)) => {
                let _ = self.epoll.delete(fd.as_fd());
            }
            // Its callback is running right now.
            None => {
                g.cancelled.insert(token);
            }
        }
    }
}
