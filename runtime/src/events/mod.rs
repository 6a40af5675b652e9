//! `berth events`: the container's cgroup statistics and OOM notifications
//! as JSON lines, in runc's event format (`{"type","id","data"}`).
//!
//! One thread, one poll(2) over three fds: a timerfd for the stats interval,
//! the OOM watcher's fd (see `oom`), and a pidfd of the container init, which
//! turns readable when the init exits and so ends the stream.

pub mod duration;
pub mod oom;

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::state::{Dir, Status, Stored};
use crate::sys::{self, event::Watch};

pub struct EventsOpts {
    /// Print one stats event and return.
    pub stats_only: bool,
    pub interval: Duration,
}

#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

fn emit<T: Serialize>(kind: &'static str, id: &str, data: Option<T>) -> Result<()> {
    let mut line = serde_json::to_vec(&Event { kind, id, data }).map_err(Error::encode(kind))?;
    line.push(b'\n');
    // One write per event, so a reader never sees half a line.
    std::io::stdout()
        .lock()
        .write_all(&line)
        .ctx(|| "writing event to stdout")
}

fn not_running(id: &str) -> Error {
    Error::BadStatus {
        op: "events",
        id: id.into(),
        status: "stopped".into(),
    }
}

pub fn run(root: &Path, id: &str, o: &EventsOpts) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    if st.status(&dir.path) == Status::Stopped {
        return Err(not_running(id));
    }
    st.need_cgroup("events")?;
    if o.stats_only {
        return emit("stats", id, Some(st.cgroup.stats()?));
    }
    stream(&st, o.interval)
}

fn pidfd_of(st: &Stored) -> Result<OwnedFd> {
    // Checked after opening, so the fd cannot refer to a recycled pid.
    match sys::event::pidfd_open(st.pid) {
        Ok(fd) if st.alive() => Ok(fd),
        _ => Err(not_running(&st.id)),
    }
}

fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut w = [Watch::input(Some(fd))];
    matches!(sys::event::poll(&mut w, Some(Duration::ZERO)), Ok(1))
}

fn stream(st: &Stored, interval: Duration) -> Result<()> {
    // The watcher comes first, so no OOM after the first tick goes unseen.
    let mut oom = oom::Watcher::new(&st.cgroup)?;
    let pidfd = pidfd_of(st)?;
    let timer = sys::event::interval_timer(interval).ctx(|| "timerfd")?;
    loop {
        let mut fds = [
            Watch::input(oom.as_ref().map(|w| w.as_fd())),
            Watch::input(Some(timer.as_fd())),
            Watch::input(Some(pidfd.as_fd())),
        ];
        if let Err(e) = sys::event::poll(&mut fds, None) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).ctx(|| "poll");
        }
        let [oom_fired, ticked, exited] = fds.map(|w| w.fired());
        // OOMs first: an OOM kill of the init makes the pidfd readable too.
        if oom_fired {
            if let Some(w) = oom.as_mut() {
                match w.take()? {
                    Some(n) => {
                        for _ in 0..n {
                            emit::<()>("oom", &st.id, None)?;
                        }
                    }
                    None => oom = None,
                }
            }
        }
        if ticked {
            let mut ticks = [0u8; 8];
            let _ = sys::event::read(&timer, &mut ticks);
            emit("stats", &st.id, Some(st.cgroup.stats()?))?;
        }
        if exited {
            // An OOM that killed the init may be signalled just after its exit.
            if !oom_fired {
                if let Some(w) = oom.as_mut().filter(|w| readable(w.as_fd())) {
                    for _ in 0..w.take()?.unwrap_or(0) {
                        emit::<()>("oom", &st.id, None)?;
                    }
                }
            }
            return Ok(());
        }
    }
}
