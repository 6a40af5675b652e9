//! The shim is a subreaper: container inits (re-parented to it once `berth
//! create` exits) and the `berth` commands it runs are all its children.
//! One thread waits for SIGCHLD and reaps everything; exits are routed to
//! whoever registered the pid, or kept until someone asks for them, since a
//! short-lived child can be reaped before its spawner gets to register it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

type Watcher = Box<dyn FnOnce(i32) + Send>;

#[derive(Default)]
struct Inner {
    /// Exit codes nobody claimed yet.
    exits: HashMap<i32, i32>,
    watchers: HashMap<i32, Watcher>,
}

#[derive(Default)]
pub struct Reaper {
    inner: Mutex<Inner>,
    cv: Condvar,
}

/// Block SIGCHLD in the calling thread; threads spawned afterwards inherit
/// the mask, so only the reaper's `sigwait` sees it. Children get a clean
/// mask from std's spawn.
pub fn block_sigchld() -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    set.thread_block()
}

/// Exit code as containerd expects it: the status, or 128 + signal.
fn code(ws: WaitStatus) -> Option<(i32, i32)> {
    match ws {
        WaitStatus::Exited(pid, c) => Some((pid.as_raw(), c)),
        WaitStatus::Signaled(pid, s, _) => Some((pid.as_raw(), 128 + s as i32)),
        _ => None,
    }
}

impl Reaper {
    pub fn spawn() -> Arc<Reaper> {
        let r = Arc::new(Reaper::default());
        let me = Arc::clone(&r);
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || me.run())
            .expect("spawn reaper thread");
        r
    }

    fn run(&self) {
        let mut set = SigSet::empty();
        set.add(Signal::SIGCHLD);
        loop {
            // Signals coalesce: reap everything that is ready on each wakeup.
            let _ = set.wait();
            loop {
                match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(ws) => {
                        if let Some((pid, c)) = code(ws) {
                            self.exited(pid, c);
                        }
                    }
                }
            }
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
}
