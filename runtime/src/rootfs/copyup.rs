//! `tmpcopyup` (a runc extension podman sets on /tmp, /run, ... with
//! `--read-only`): a new tmpfs starts with the contents of the directory it
//! covers. Everything goes through fds below the covered directory, opened
//! without following symlinks, so an image cannot point the copy elsewhere.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys;

const DIR_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;

/// Copy the tree below `from` (the covered directory) into `to` (the root of
/// the tmpfs just mounted over it): files, directories, symlinks and special
/// files, with their mode and owner.
pub(crate) fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let src = sys::openat(from, c".", DIR_FLAGS, 0)?;
    let dst = sys::openat(to, c".", DIR_FLAGS, 0)?;
    copy_dir(src, &dst)
}

fn copy_dir(src: OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let dup = src.try_clone()?;
    let mut dir = nix::dir::Dir::from_fd(dup).map_err(io::Error::from)?;
    for ent in dir.iter() {
        let ent = ent.map_err(io::Error::from)?;
        let name = ent.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        copy_entry(src.as_fd(), dst.as_fd(), name)?;
    }
    Ok(())
}

fn copy_entry(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let st = sys::fstatat_nofollow(src, name)?;
    let perm = st.st_mode & 0o7777;
    match sys::file_type(&st) {
        libc::S_IFDIR => {
            sys::mkdirat(dst, name, 0o700)?;
            let s = sys::openat(src, name, DIR_FLAGS, 0)?;
            let d = sys::openat(dst, name, DIR_FLAGS, 0)?;
            copy_dir(s, &d)?;
            own(d.as_fd(), &st, perm)
        }
        libc::S_IFREG => {
            let s = sys::openat(src, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
            let d = sys::openat(
                dst,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
            )?;
            let (mut s, mut d) = (File::from(s), File::from(d));
            io::copy(&mut s, &mut d)?;
            own(d.as_fd(), &st, perm)
        }
        libc::S_IFLNK => {
            let target = nix::fcntl::readlinkat(src, name).map_err(io::Error::from)?;
            let target = sys::cstring(&target)?;
            sys::symlinkat(&target, dst, name)?;
            let l = sys::openat(dst, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            sys::fchown_fd(l.as_fd(), st.st_uid, st.st_gid)
        }
        // fifos, sockets and device nodes: recreated, not opened.
        _ => {
            sys::mknodat(dst, name, st.st_mode, st.st_rdev)?;
            let n = sys::openat(dst, name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            sys::fchown_fd(n.as_fd(), st.st_uid, st.st_gid)?;
            sys::fchmodat(dst, name, perm)
        }
    }
}

/// Owner first, then the mode: chown clears setuid/setgid bits.
fn own(fd: BorrowedFd<'_>, st: &sys::Stat, perm: libc::mode_t) -> io::Result<()> {
    sys::fchown_fd(fd, st.st_uid, st.st_gid)?;
    nix::sys::stat::fchmod(fd, nix::sys::stat::Mode::from_bits_truncate(perm))
        .map_err(io::Error::from)
}
