//! OOM notifications for a container's memory cgroup, turned into TaskOOM
//! events. cgroup v1: an eventfd registered through cgroup.event_control
//! on memory.oom_control. cgroup v2: inotify on memory.events, reporting
//! when its oom_kill count grows. Both fds live in the reaper's epoll set,
//! so watching costs no thread.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::error::{Error, Result};
use crate::reaper::Reaper;

/// The memory cgroup of `pid`: (directory, is_v2).
fn memory_cgroup(pid: i32) -> Option<(PathBuf, bool)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut v2 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hier), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "memory") {
            let dir = Path::new("/sys/fs/cgroup/memory").join(rel);
            if dir.join("memory.oom_control").exists() {
                return Some((dir, false));
            }
        } else if hier == "0" && ctrls.is_empty() {
            let dir = Path::new("/sys/fs/cgroup").join(rel);
            if dir.join("memory.events").exists() {
                v2 = Some((dir, true));
            }
        }
    }
    v2
}

fn oom_kills(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("memory.events"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Watch the memory cgroup of `pid`, calling `on_oom` for each OOM event.
/// Returns the reaper token, or None when the container has no memory
/// cgroup we can watch.
pub fn watch(reaper: &Reaper, pid: i32, on_oom: impl Fn() + Send + 'static) -> Result<Option<u64>> {
    let Some((dir, v2)) = memory_cgroup(pid) else {
        return Ok(None);
    };
    if v2 {
        let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(Error::sys("inotify_init"))?;
        let events = dir.join("memory.events");
        ino.add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(Error::sys(format!("inotify watch {}", events.display())))?;
        let mut seen = oom_kills(&dir);
        let fd: OwnedFd = ino.into();
        let token = reaper.watch_fd(fd, move |fd| {
            let mut buf = [0u8; 512];
            let _ = nix::unistd::read(fd.as_fd(), &mut buf);
            if !dir.exists() {
                return false;
            }
            let now = oom_kills(&dir);
            if now > seen {
                seen = now;
                on_oom();
            }
            true
        })?;
        return Ok(Some(token));
    }
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(Error::sys("eventfd"))?;
    let ctl = dir.join("memory.oom_control");
    let oom = File::open(&ctl).map_err(Error::io("open", &ctl))?;
    let reg = dir.join("cgroup.event_control");
    std::fs::write(
        &reg,
        format!("{} {}", efd.as_fd().as_raw_fd(), oom.as_raw_fd()),
    )
    .map_err(Error::io("register OOM eventfd in", &reg))?;
    let fd: OwnedFd = efd.into();
    let token = reaper.watch_fd(fd, move |fd| {
        let mut buf = [0u8; 8];
        let _ = nix::unistd::read(fd.as_fd(), &mut buf);
        // The eventfd also fires when the cgroup is removed.
        if !reg.exists() {
            return false;
        }
        on_oom();
        true
    })?;
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_memory_cgroup_or_none() {
        // Whatever this host has, the answer names an existing directory.
        if let Some((dir, _)) = memory_cgroup(std::process::id() as i32) {
            assert!(dir.is_dir(), "{}", dir.display());
        }
        assert!(memory_cgroup(0).is_none());
    }
}
