//! Raw wrappers for the few syscalls the rootfs code needs directly: the new
//! mount API (not wrapped by nix) and fd-relative helpers that keep every
//! operation anchored to an fd rather than a path a symlink could redirect.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

pub(crate) const EMPTY: &CStr = c"";

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    // SAFETY: a non-negative return of an fd-creating syscall is a new fd we own.
    cvt(ret).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub(crate) fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// "/proc/self/fd/N" without a heap allocation: mount(2) and umount2(2) only
/// take paths, and this magic link names exactly the inode behind the fd.
pub(crate) struct ProcFd([u8; 32]);

impl ProcFd {
    pub(crate) fn new(fd: BorrowedFd<'_>) -> Self {
        const PREFIX: &[u8] = b"/proc/self/fd/";
        let mut buf = [0u8; 32];
        buf[..PREFIX.len()].copy_from_slice(PREFIX);
        let mut digits = [0u8; 12];
        let mut n = fd.as_raw_fd() as u32;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[PREFIX.len() + i] = digits[len - 1 - i];
        }
        ProcFd(buf)
    }

    pub(crate) fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.0).expect("buffer is NUL-terminated")
    }
}

pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain old data; zero is a valid value for every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // SAFETY: valid fd, NUL-terminated path, and a correctly sized open_how.
    cvt_fd(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })
}

pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and NUL-terminated path.
    cvt_fd(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode,
        ) as libc::c_long
    })
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st is a valid out-pointer of the right size.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstat succeeded, so it filled st.
    Ok(unsafe { st.assume_init() })
}

pub(crate) fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid fd, NUL-terminated name, valid out-pointer.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } as libc::c_long)?;
    // SAFETY: fstatat succeeded.
    Ok(unsafe { st.assume_init() })
}

// f_type and the magic constants differ in width and sign across
// architectures; compare them all as i64.
#[allow(clippy::unnecessary_cast)]
pub(crate) const PROC_MAGIC: i64 = libc::PROC_SUPER_MAGIC as i64;
#[allow(clippy::unnecessary_cast)]
pub(crate) const CGROUP2_MAGIC: i64 = libc::CGROUP2_SUPER_MAGIC as i64;

#[allow(clippy::unnecessary_cast)]
pub(crate) fn fstatfs_type(fd: BorrowedFd<'_>) -> io::Result<i64> {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: valid fd and out-pointer.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstatfs succeeded.
    Ok(unsafe { st.assume_init() }.f_type as i64)
}

#[allow(clippy::unnecessary_cast)]
pub(crate) fn statfs_type(path: &CStr) -> io::Result<i64> {
    let mut st = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: NUL-terminated path and valid out-pointer.
    cvt(unsafe { libc::statfs(path.as_ptr(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: statfs succeeded.
    Ok(unsafe { st.assume_init() }.f_type as i64)
}

pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) } as libc::c_long).map(drop)
}

pub(crate) fn mknodat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: libc::mode_t,
    dev: libc::dev_t,
) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, dev) } as libc::c_long)
        .map(drop)
}

pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated strings and a valid fd.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) } as libc::c_long)
        .map(drop)
}

pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) } as libc::c_long).map(drop)
}

/// fchownat(fd, "", AT_EMPTY_PATH): works on O_PATH fds and never follows a
/// symlink, unlike a path-based chown.
pub(crate) fn fchown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: valid fd and empty NUL-terminated path.
    cvt(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH,
        )
    } as libc::c_long)
    .map(drop)
}

pub(crate) fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated name.
    cvt(unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) } as libc::c_long)
        .map(drop)
}

pub(crate) fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is NULL or a NUL-terminated string.
    cvt(unsafe {
        libc::mount(
            p(source),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data) as *const libc::c_void,
        )
    } as libc::c_long)
    .map(drop)
}

pub(crate) fn umount2(target: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) } as libc::c_long).map(drop)
}

pub(crate) fn open_tree(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_uint,
) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and NUL-terminated path.
    cvt_fd(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dir.as_raw_fd(),
            path.as_ptr(),
            flags | libc::OPEN_TREE_CLOEXEC,
        )
    })
}

/// Attach a detached mount (from open_tree or fsmount) on top of the inode
/// `to` refers to; no path is walked, so nothing can be redirected.
pub(crate) fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: valid fds and empty NUL-terminated paths.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            EMPTY.as_ptr(),
            to.as_raw_fd(),
            EMPTY.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MountAttr {
    pub set: u64,
    pub clr: u64,
    pub propagation: u64,
}

impl MountAttr {
    pub(crate) fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0 && self.propagation == 0
    }
}

/// mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE]) on the mount whose
/// root `fd` refers to.
pub(crate) fn mount_setattr_fd(
    fd: BorrowedFd<'_>,
    attr: MountAttr,
    recursive: bool,
) -> io::Result<()> {
    let raw = libc::mount_attr {
        attr_set: attr.set,
        attr_clr: attr.clr,
        propagation: attr.propagation,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: valid fd, empty path, and a mount_attr of the declared size.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            flags,
            &raw as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })
    .map(drop)
}

pub(crate) fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: NUL-terminated name.
    cvt_fd(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) })
}

pub(crate) fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and NUL-terminated key/value.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
    .map(drop)
}

pub(crate) fn fsconfig_create(fs: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: valid fd; the command takes no key or value.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })
    .map(drop)
}

pub(crate) fn fsmount(fs: BorrowedFd<'_>, attr_flags: u64) -> io::Result<OwnedFd> {
    // SAFETY: valid fd.
    cvt_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC,
            attr_flags as libc::c_uint,
        )
    })
}

pub(crate) fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fchdir(fd.as_raw_fd()) } as libc::c_long).map(drop)
}

pub(crate) fn chdir(path: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::chdir(path.as_ptr()) } as libc::c_long).map(drop)
}

pub(crate) fn chroot(path: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated path.
    cvt(unsafe { libc::chroot(path.as_ptr()) } as libc::c_long).map(drop)
}

pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated paths.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

pub(crate) fn is_errno(err: &io::Error, errno: libc::c_int) -> bool {
    err.raw_os_error() == Some(errno)
}

pub(crate) fn file_type(st: &libc::stat) -> libc::mode_t {
    st.st_mode & libc::S_IFMT
}

/// Make sure fd `n` is taken: if nothing holds it, put /dev/null there,
/// close-on-exec. Returns whether it was free.
pub(crate) fn plug_fd(n: RawFd) -> io::Result<bool> {
    // SAFETY: F_GETFD only reads the flags of whatever fd `n` is.
    if unsafe { libc::fcntl(n, libc::F_GETFD) } >= 0 {
        return Ok(false);
    }
    // std opens it close-on-exec. The fd is leaked on purpose: it keeps
    // the number taken for as long as the process lives.
    let null = std::fs::File::open("/dev/null")?;
    if null.as_raw_fd() != n {
        // SAFETY: dup3 onto a number nothing holds.
        cvt(unsafe { libc::dup3(null.as_raw_fd(), n, libc::O_CLOEXEC) } as libc::c_long)?;
        return Ok(true);
    }
    std::mem::forget(null);
    Ok(true)
}
