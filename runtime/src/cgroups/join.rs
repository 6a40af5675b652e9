//! How a new process (the container init, an exec'd process) enters the
//! container's cgroup without paying for a v1 migration.
//!
//! A v1 move of another task (`echo PID > cgroup.procs`) takes the global
//! threadgroup lock for writing, which waits for an RCU grace period (9–15
//! ms on the lab host) unless another migration happened just before. A
//! single-threaded task that writes `0` to a v1 `tasks` file moves only
//! itself, and the kernel skips that lock. The write permission is checked
//! against the credentials of whoever opened the file, so the files are
//! opened here, by berth, before the clone, and the child writes through
//! them from inside its new namespaces while it is still single-threaded.
//! Where berth makes the v1 directories after the clone (no user
//! namespace: `Plan::unshare_early`), the child opens them itself once they
//! exist, still with the host's root credentials ([`Hierarchies::V1`]).
//!
//! The cgroup2 hierarchy (pure v2, or the unified mount of a hybrid host) is
//! joined at birth with clone3's `CLONE_INTO_CGROUP`: a cgroup2 `tasks`
//! does not exist and `cgroup.threads` cannot cross domains.
//!
//! Whatever cannot be opened or written this way is left to the parent's
//! [`Cgroup::add_pid`], which the child asks for.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::{fsutil, Cgroup};

/// Files opened before the clone, for the child to join its cgroup with.
#[derive(Debug, Default)]
pub struct Joiner {
    /// The cgroup2 directory, for `CLONE_INTO_CGROUP`.
    clone_into: Option<OwnedFd>,
    /// One v1 `tasks` file per hierarchy, opened for writing.
    tasks: Vec<File>,
    /// A directory could not be opened: the parent must write the pid.
    incomplete: bool,
}

/// Which of the container's hierarchies a [`Joiner`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchies {
    All,
    /// The cgroup2 one only, which a child joins at birth: for an init
    /// cloned before its v1 directories exist (`unshare_early`).
    Cgroup2,
    /// The v1 ones only: that init, once they exist, opens them itself.
    V1,
}

impl Cgroup {
    /// Open what a child needs to join this cgroup (or `sub` below it, for
    /// `exec --cgroup`) by itself. Never fails: what cannot be opened here
    /// is left to [`Cgroup::add_pid`] (see [`Joiner::self_join`]).
    pub fn joiner(&self, sub: Option<&Path>) -> Joiner {
        self.joiner_of(sub, Hierarchies::All)
    }

    pub fn joiner_of(&self, sub: Option<&Path>, which: Hierarchies) -> Joiner {
        let mut j = Joiner::default();
        if self.pending.borrow().is_some() {
            // A systemd unit does not exist before the init: add_pid starts
            // it with the init's pid.
            j.incomplete = true;
            return j;
        }
        for dir in &self.dirs {
            let path = match sub {
                Some(s) => dir.path.join(s),
                None => dir.path.clone(),
            };
            if dir.is_unified() {
                if which == Hierarchies::V1 {
                    continue;
                }
                match fsutil::open_dir(&path) {
                    Ok(fd) => j.clone_into = Some(fd),
                    Err(_) => j.incomplete = true,
                }
            } else {
                if which == Hierarchies::Cgroup2 {
                    continue;
                }
                match OpenOptions::new().write(true).open(path.join("tasks")) {
                    Ok(f) => j.tasks.push(f),
                    Err(_) => j.incomplete = true,
                }
            }
        }
        j
    }
}

impl Joiner {
    /// The cgroup2 directory fd for clone3's `CLONE_INTO_CGROUP`, if any.
    pub fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.clone_into.as_ref().map(|f| f.as_fd())
    }

    /// clone3 refused `CLONE_INTO_CGROUP` (a hybrid host whose cgroup2
    /// mount is not the default hierarchy berth can use): clone without it
    /// and let the parent write the pid.
    pub fn drop_clone_into(&mut self) {
        if self.clone_into.take().is_some() {
            self.incomplete = true;
        }
    }

    /// In the child, while it is single-threaded: move itself into every v1
    /// hierarchy. Returns whether the child is now in its cgroup everywhere
    /// (cgroup2 included, by clone3); if not, the parent must write its pid
    /// to cgroup.procs of every hierarchy.
    pub fn self_join(&self) -> bool {
        let mut ok = !self.incomplete;
        for mut f in &self.tasks {
            // One write(2): "0" means the writing thread.
            ok &= matches!(f.write(b"0"), Ok(1));
        }
        ok
    }
}
