//! `berth events`: the container's cgroup statistics and OOM notifications
//! as JSON lines, in runc's event format (`{"type","id","data"}`).
//!
//! One thread, one poll(2) over three fds: a timerfd for the stats interval,
//! the OOM watcher's fd (see `oom`), and a pidfd of the container init, which
//! turns readable when the init exits and so ends the stream.

pub mod duration;
pub mod oom;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Context, Error, Result};
use crate::state::{Dir, Status, Stored};

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
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, st.pid, 0) } as i32;
    // Checked after opening, so the fd cannot refer to a recycled pid.
    if fd < 0 || !st.alive() {
        if fd >= 0 {
            // SAFETY: closing the fd we just got.
            unsafe { libc::close(fd) };
        }
        return Err(not_running(&st.id));
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn timerfd(every: Duration) -> Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "timerfd_create");
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let ts = libc::timespec {
        tv_sec: every.as_secs() as libc::time_t,
        tv_nsec: every.subsec_nanos() as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: ts,
        it_value: ts,
    };
    // SAFETY: spec is a valid itimerspec; old value not wanted.
    if unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "timerfd_settime");
    }
    Ok(fd)
}

fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

fn stream(st: &Stored, interval: Duration) -> Result<()> {
    // The watcher comes first, so no OOM after the first tick goes unseen.
    let mut oom = oom::Watcher::new(&st.cgroup)?;
    let pidfd = pidfd_of(st)?;
    let timer = timerfd(interval)?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: oom.as_ref().map_or(-1, |w| w.fd()),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: timer.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of pollfds (fd -1 is ignored).
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).ctx(|| "poll");
        }
        // OOMs first: an OOM kill of the init makes the pidfd readable too.
        if fds[0].revents != 0 {
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
        if fds[1].revents != 0 {
            let mut ticks = [0u8; 8];
            // SAFETY: a timerfd read fills 8 bytes of ticks.
            unsafe { libc::read(timer.as_raw_fd(), ticks.as_mut_ptr().cast(), 8) };
            emit("stats", &st.id, Some(st.cgroup.stats()?))?;
        }
        if fds[2].revents != 0 {
            // An OOM that killed the init may be signalled just after its exit.
            if fds[0].revents == 0 {
                if let Some(w) = oom.as_mut().filter(|w| readable(w.fd())) {
                    for _ in 0..w.take()?.unwrap_or(0) {
                        emit::<()>("oom", &st.id, None)?;
                    }
                }
            }
            return Ok(());
        }
    }
}
