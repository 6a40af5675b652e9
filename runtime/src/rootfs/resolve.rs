//! Path resolution confined to the container rootfs, and creation of missing
//! mountpoints. Every lookup resolves a symlink or ".." in the image as if
//! the rootfs were "/" (openat2 with RESOLVE_IN_ROOT where the kernel has
//! it, retrying the EAGAIN a concurrent rename causes; libpathrs's checked
//! walk where not), so nothing can reach a host path. Creation happens with *at() calls relative to an
//! already-resolved parent fd, never through a path string.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use super::fdpath::FdPaths;
use crate::sys;

/// Lexically clean `path` into an absolute path: "." dropped, ".." popped but
/// never above "/". Relative paths are taken relative to "/".
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Split a cleaned absolute path into parent and final name (None for "/").
pub(crate) fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    Some((path.parent()?, path.file_name()?))
}

/// How often a lookup that a concurrent rename or mount made fail with
/// EAGAIN is tried again before the EAGAIN is reported.
const OPENAT2_TRIES: u32 = 128;

/// The container rootfs as an O_PATH directory fd that all lookups start from.
pub(crate) struct Root {
    fd: OwnedFd,
}

impl Root {
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let c = sys::cstring(path.as_os_str())?;
        let fd = sys::openat(sys::CWD, &c, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Root { fd })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// O_PATH fd of `path` inside the root. Mounts on the final component are
    /// traversed, so the fd names the topmost mount there.
    ///
    /// openat2 itself where the kernel has it, not through libpathrs: on any
    /// failure libpathrs describes its fds through the "/proc" path, and in
    /// a mount namespace the config joins that is the container's, which
    /// may be no procfs at all (it then panics: CVE-2025-52881's fake /proc).
    pub(crate) fn resolve(&self, path: &Path, nofollow: bool) -> io::Result<OwnedFd> {
        let c = sys::cstring(path.as_os_str())?;
        let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
        let how = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        // EAGAIN: a rename or mount anywhere on the host raced the lookup.
        let mut tries = 0;
        loop {
            match sys::openat2(self.fd(), &c, flags, how) {
                Err(e) if sys::is_errno(&e, libc::EAGAIN) && tries < OPENAT2_TRIES => tries += 1,
                // No openat2 (before Linux 5.6, or refused by a seccomp
                // filter around berth).
                Err(e) if sys::is_errno(&e, libc::ENOSYS) || sys::is_errno(&e, libc::EPERM) => {
                    return self.resolve_walk(path, nofollow)
                }
                r => return r,
            }
        }
    }

    /// libpathrs's own checked walk, for kernels without openat2. It needs
    /// "/proc" to be a procfs (see `resolve`): refused otherwise.
    fn resolve_walk(&self, path: &Path, nofollow: bool) -> io::Result<OwnedFd> {
        if !crate::procfs::is_root(c"/proc") {
            return Err(io::Error::other(
                "openat2 is missing and /proc is not a procfs: cannot resolve paths safely",
            ));
        }
        let root = pathrs::RootRef::from_fd(self.fd());
        let h = if nofollow {
            root.resolve_nofollow(path)
        } else {
            root.resolve(path)
        };
        h.map(OwnedFd::from).map_err(|e| match e.kind() {
            pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
            // A detected attack or an internal failure: report it as a
            // cross-device escape attempt rather than a missing path.
            _ => io::Error::from_raw_os_error(libc::EXDEV),
        })
    }

    /// Resolve a directory, creating missing components with `mode`. Each new
    /// component is made with mkdirat under the fd of its already-resolved
    /// parent and reopened O_NOFOLLOW, so a racing symlink cannot divert it.
    pub(crate) fn mkdir_all(&self, path: &Path, undo: &mut Undo) -> io::Result<Rc<OwnedFd>> {
        match self.resolve(path, false) {
            Ok(fd) => Ok(Rc::new(fd)),
            Err(e) if sys::is_errno(&e, libc::ENOENT) => self.mkdir_missing(path, undo),
            Err(e) => Err(e),
        }
    }

    /// mkdir_all for a path already known not to resolve.
    pub(crate) fn mkdir_missing(&self, path: &Path, undo: &mut Undo) -> io::Result<Rc<OwnedFd>> {
        let (parent, name) =
            split(path).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
        let parent = self.mkdir_all(parent, undo)?;
        let name = sys::cstring(name)?;
        match sys::mkdirat(parent.as_fd(), &name, 0o755) {
            Ok(()) => {
                let fd = sys::openat(
                    parent.as_fd(),
                    &name,
                    libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY,
                    0,
                )?;
                undo.created(&parent, name, fd.as_fd(), true)?;
                Ok(Rc::new(fd))
            }
            // Lookup said ENOENT, yet the name exists: a dangling symlink.
            // Refuse rather than create its target.
            Err(e) if sys::is_errno(&e, libc::EEXIST) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a dangling symlink", path.display()),
            )),
            Err(e) => Err(e),
        }
    }

    /// Parent directory fd (created if missing) and final name of `path`.
    pub(crate) fn parent_of(
        &self,
        path: &Path,
        undo: &mut Undo,
    ) -> io::Result<(Rc<OwnedFd>, CString)> {
        let (parent, name) =
            split(path).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok((self.mkdir_all(parent, undo)?, sys::cstring(name)?))
    }

    /// Create an empty regular file at `path` (parents created as needed) to
    /// serve as a file mountpoint. O_EXCL|O_NOFOLLOW: never opens something
    /// that appeared in its place.
    pub(crate) fn create_file(&self, path: &Path, undo: &mut Undo) -> io::Result<OwnedFd> {
        let (parent, name) = self.parent_of(path, undo)?;
        let fd = sys::openat(
            parent.as_fd(),
            &name,
            libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o644,
        )?;
        undo.created(&parent, name, fd.as_fd(), false)?;
        Ok(fd)
    }
}

struct Created {
    parent: Rc<OwnedFd>,
    name: CString,
    dev: u64,
    ino: u64,
    dir: bool,
}

/// What prepare() did, so that a failure can take it back: mounts are
/// detached and every inode it created is removed again (only if it is still
/// the very inode it created, and directories only if empty).
#[derive(Default)]
pub(crate) struct Undo {
    created: Vec<Created>,
    /// Mounts made in the caller's namespace (no new mount namespace), as fds
    /// of their roots.
    pub(crate) mounts: Vec<OwnedFd>,
}

impl Undo {
    pub(crate) fn created(
        &mut self,
        parent: &Rc<OwnedFd>,
        name: CString,
        fd: BorrowedFd<'_>,
        dir: bool,
    ) -> io::Result<()> {
        let st = sys::fstat(fd)?;
        self.created.push(Created {
            parent: Rc::clone(parent),
            name,
            dev: st.st_dev,
            ino: st.st_ino,
            dir,
        });
        Ok(())
    }

    /// Record an inode created by name (mknod, symlink) under `parent`,
    /// given its lstat.
    pub(crate) fn record(&mut self, parent: &Rc<OwnedFd>, name: &CStr, st: &sys::Stat) {
        self.created.push(Created {
            parent: Rc::clone(parent),
            name: name.to_owned(),
            dev: st.st_dev,
            ino: st.st_ino,
            dir: sys::file_type(st) == libc::S_IFDIR,
        });
    }

    /// Best effort: detach our mounts (newest first), then remove what we
    /// created (newest first). Errors are ignored: this runs while reporting
    /// the original failure.
    pub(crate) fn rollback(self, root_bind: Option<&Root>, paths: &FdPaths) {
        let detach = |fd| paths.with(fd, |p| sys::umount2(p, libc::MNT_DETACH));
        for m in self.mounts.iter().rev() {
            let _ = detach(m.as_fd());
        }
        if let Some(root) = root_bind {
            // Detaching the rootfs self-bind takes every mount below it along.
            let _ = detach(root.fd());
        }
        for c in self.created.iter().rev() {
            let Ok(st) = sys::fstatat_nofollow(c.parent.as_fd(), &c.name) else {
                continue;
            };
            if st.st_dev != c.dev || st.st_ino != c.ino {
                continue;
            }
            let flags = if c.dir { libc::AT_REMOVEDIR } else { 0 };
            let _ = sys::unlinkat(c.parent.as_fd(), &c.name, flags);
        }
    }
}
