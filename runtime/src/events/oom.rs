//! OOM notifications for one cgroup, as one pollable fd.
//!
//! v1: an eventfd registered on memory.oom_control through
//! cgroup.event_control; the kernel signals it on every OOM in the cgroup,
//! and also once when the cgroup is removed (told apart by checking that
//! cgroup.event_control still exists).
//! v2: there is no OOM eventfd; memory.events is a file whose `oom_kill`
//! counter the kernel bumps (with a modify notification) on each OOM kill,
//! so an inotify watch on it and a re-read tell when the counter grows.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::cgroups::{Cgroup, Layout};
use crate::error::{Context, Result};
use crate::sys;

pub enum Watcher {
    V1 {
        efd: OwnedFd,
        /// Kept open while registered: the registration refers to it.
        _control: File,
        dir: PathBuf,
    },
    V2 {
        ifd: OwnedFd,
        events: PathBuf,
        kills: u64,
    },
}

/// memory.events' oom_kill counter (0 if the file or key is missing).
pub fn oom_kills(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl Watcher {
    /// Watch the container's memory cgroup; None if it has none.
    pub fn new(cg: &Cgroup) -> Result<Option<Watcher>> {
        let Some(dir) = cg.controller_path("memory") else {
            return Ok(None);
        };
        if cg.layout() == Layout::V2 {
            return Self::v2(dir).map(Some);
        }
        let control = dir.join("memory.oom_control");
        let file = File::open(&control).ctx(|| format!("open {}", control.display()))?;
        let efd = sys::event::eventfd().ctx(|| "eventfd")?;
        let reg = dir.join("cgroup.event_control");
        let line = format!("{} {}", efd.as_raw_fd(), file.as_raw_fd());
        std::fs::write(&reg, line).ctx(|| format!("register OOM eventfd in {}", reg.display()))?;
        Ok(Some(Watcher::V1 {
            efd,
            _control: file,
            dir: dir.to_path_buf(),
        }))
    }

    fn v2(dir: &Path) -> Result<Watcher> {
        let events = dir.join("memory.events");
        let ifd = sys::event::inotify_modify(&events)
            .ctx(|| format!("inotify watch on {}", events.display()))?;
        let text = std::fs::read_to_string(&events).ctx(|| format!("read {}", events.display()))?;
        Ok(Watcher::V2 {
            ifd,
            kills: oom_kills(&text),
            events,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Watcher::V1 { efd, .. } => efd.as_fd(),
            Watcher::V2 { ifd, .. } => ifd.as_fd(),
        }
    }
}

impl Watcher {
    /// Called when fd() is readable: Some(number of new OOMs, maybe 0), or
    /// None once the cgroup is gone and nothing more can come.
    pub fn take(&mut self) -> Result<Option<u64>> {
        match self {
            Watcher::V1 { efd, dir, .. } => {
                let mut buf = [0u8; 8];
                // An eventfd read is all 8 bytes or an error.
                sys::event::read(&*efd, &mut buf).ctx(|| "read OOM eventfd")?;
                if !dir.join("cgroup.event_control").exists() {
                    return Ok(None);
                }
                Ok(Some(u64::from_ne_bytes(buf)))
            }
            Watcher::V2 { ifd, events, kills } => {
                let mut buf = [0u8; 512];
                // Drain every queued notification; the counter says how many OOMs.
                // The fd is non-blocking: EAGAIN ends it.
                while sys::event::read(&*ifd, &mut buf).is_ok_and(|n| n > 0) {}
                let Ok(text) = std::fs::read_to_string(&*events) else {
                    return Ok(None);
                };
                let now = oom_kills(&text);
                let new = now.saturating_sub(*kills);
                *kills = now;
                Ok(Some(new))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn oom_kill_counter() {
        let t = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(super::oom_kills(t), 2);
        assert_eq!(super::oom_kills("low 0\n"), 0);
    }
}
