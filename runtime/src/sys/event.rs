//! Waiting (rustix): pidfds, timerfd, eventfd, inotify, and poll(2) over
//! fds some of which may be absent.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags};
use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec};

/// pidfd_open(2): a pidfd of `pid`, which polls readable once it exits.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// pidfd_send_signal(2) with any signal number (real-time ones included),
/// which rustix's typed signals do not all cover.
pub(crate) fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a pidfd we hold and no siginfo.
    super::cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// A CLOCK_MONOTONIC timerfd that fires every `every`.
pub(crate) fn interval_timer(every: Duration) -> io::Result<OwnedFd> {
    let fd = rustix::time::timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC)?;
    let ts = Timespec {
        tv_sec: every.as_secs() as _,
        tv_nsec: every.subsec_nanos() as _,
    };
    let spec = Itimerspec {
        it_interval: ts,
        it_value: ts,
    };
    rustix::time::timerfd_settime(&fd, TimerfdTimerFlags::empty(), &spec)?;
    Ok(fd)
}

pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    Ok(rustix::event::eventfd(
        0,
        rustix::event::EventfdFlags::CLOEXEC,
    )?)
}

/// A non-blocking inotify fd watching `path` for IN_MODIFY.
pub(crate) fn inotify_modify(path: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::inotify;
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
    inotify::add_watch(&fd, path, inotify::WatchFlags::MODIFY)?;
    Ok(fd)
}

/// Read up to `buf.len()` bytes (a counter of eventfd or timerfd, queued
/// inotify events).
pub(crate) fn read(fd: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(rustix::io::read(fd, buf)?)
}

/// One fd to wait on; `None` is skipped, as poll(2) skips a negative fd.
pub(crate) struct Watch<'a> {
    fd: Option<BorrowedFd<'a>>,
    events: PollFlags,
    revents: PollFlags,
}

impl<'a> Watch<'a> {
    pub(crate) fn input(fd: Option<BorrowedFd<'a>>) -> Self {
        Watch {
            fd,
            events: PollFlags::IN,
            revents: PollFlags::empty(),
        }
    }

    pub(crate) fn output(fd: Option<BorrowedFd<'a>>) -> Self {
        Watch {
            fd,
            events: PollFlags::OUT,
            revents: PollFlags::empty(),
        }
    }

    /// Anything happened: readable or writable as asked, hangup, error.
    pub(crate) fn fired(&self) -> bool {
        !self.revents.is_empty()
    }

    pub(crate) fn has_input(&self) -> bool {
        self.revents.contains(PollFlags::IN)
    }
}

/// poll(2) up to `timeout` (None: forever); with no fd at all, a sleep.
/// EINTR is returned as such.
pub(crate) fn poll(watches: &mut [Watch<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let mut fds: Vec<PollFd<'_>> = watches
        .iter()
        .filter_map(|w| w.fd.map(|fd| PollFd::from_borrowed_fd(fd, w.events)))
        .collect();
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs() as _,
        tv_nsec: t.subsec_nanos() as _,
    });
    let n = rustix::event::poll(&mut fds, ts.as_ref())?;
    let mut fired = fds.iter().map(|f| f.revents());
    for w in watches.iter_mut().filter(|w| w.fd.is_some()) {
        w.revents = fired.next().unwrap_or_else(PollFlags::empty);
    }
    Ok(n)
}
