//! fd-relative file calls (rustix), each anchored to an fd rather than a
//! path a symlink could redirect.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

pub(crate) type Stat = rustix::fs::Stat;

/// The "directory" AT_FDCWD, for *at() calls on plain paths.
pub(crate) const CWD: BorrowedFd<'static> = rustix::fs::CWD;

fn mode(m: libc::mode_t) -> Mode {
    Mode::from_raw_mode(m)
}

pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    m: libc::mode_t,
) -> io::Result<OwnedFd> {
    let flags = OFlags::from_bits_retain(flags as u32) | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, path, flags, mode(m))?)
}

/// openat2(2): `resolve` holds RESOLVE_* flags.
pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let flags = OFlags::from_bits_retain(flags as u32) | OFlags::CLOEXEC;
    let resolve = rustix::fs::ResolveFlags::from_bits_retain(resolve);
    Ok(rustix::fs::openat2(
        dir,
        path,
        flags,
        Mode::empty(),
        resolve,
    )?)
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    Ok(rustix::fs::fstat(fd)?)
}

pub(crate) fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

// f_type and the magic constants differ in width and sign across
// architectures; compare them all as i64.
#[allow(clippy::unnecessary_cast)]
pub(crate) const PROC_MAGIC: i64 = libc::PROC_SUPER_MAGIC as i64;
#[allow(clippy::unnecessary_cast)]
pub(crate) const CGROUP2_MAGIC: i64 = libc::CGROUP2_SUPER_MAGIC as i64;

#[allow(clippy::unnecessary_cast)]
pub(crate) fn fstatfs_type(fd: BorrowedFd<'_>) -> io::Result<i64> {
    Ok(rustix::fs::fstatfs(fd)?.f_type as i64)
}

#[allow(clippy::unnecessary_cast)]
pub(crate) fn statfs_type(path: &CStr) -> io::Result<i64> {
    Ok(rustix::fs::statfs(path)?.f_type as i64)
}

pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, m: libc::mode_t) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, mode(m))?)
}

/// mknodat with the file type in `m`'s S_IFMT bits, as mknod(2) takes it.
pub(crate) fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    m: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    let kind = FileType::from_raw_mode(m);
    Ok(rustix::fs::mknodat(
        dir,
        name,
        kind,
        mode(m & !libc::S_IFMT),
        dev,
    )?)
}

pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    Ok(rustix::fs::symlinkat(target, dir, name)?)
}

pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(
        dir,
        name,
        AtFlags::from_bits_retain(flags as u32),
    )?)
}

/// fchownat(fd, "", AT_EMPTY_PATH): works on O_PATH fds and never follows a
/// symlink, unlike a path-based chown.
pub(crate) fn fchown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = (
        rustix::fs::Uid::from_raw(uid),
        rustix::fs::Gid::from_raw(gid),
    );
    Ok(rustix::fs::chownat(
        fd,
        super::EMPTY,
        Some(u),
        Some(g),
        AtFlags::EMPTY_PATH,
    )?)
}

pub(crate) fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, m: libc::mode_t) -> io::Result<()> {
    Ok(rustix::fs::chmodat(dir, name, mode(m), AtFlags::empty())?)
}

/// readlinkat(2): where the symlink (or magic link) `name` under `dir` points.
pub(crate) fn readlinkat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(std::ffi::OsString::from_vec(target.into_bytes()).into())
}

pub(crate) fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::process::fchdir(fd)?)
}

pub(crate) fn chdir(path: &CStr) -> io::Result<()> {
    Ok(rustix::process::chdir(path)?)
}

pub(crate) fn chroot(path: &CStr) -> io::Result<()> {
    Ok(rustix::process::chroot(path)?)
}

pub(crate) fn file_type(st: &Stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}
