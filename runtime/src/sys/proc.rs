//! Process attributes no crate wraps (scheduling, I/O priority, NUMA
//! policy, keyrings, close_range), the loopback ioctl, and the last steps of
//! a forked child: fd shuffling, execve with prebuilt arrays, _exit.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::cvt;

/// struct sched_attr (sched_setattr(2)); `size` is filled in.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SchedAttr {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[repr(C)]
struct RawSchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

/// sched_setattr(2) on the calling thread: every policy, SCHED_DEADLINE too.
pub(crate) fn sched_setattr_self(a: &SchedAttr) -> io::Result<()> {
    let raw = RawSchedAttr {
        size: std::mem::size_of::<RawSchedAttr>() as u32,
        policy: a.policy,
        flags: a.flags,
        nice: a.nice,
        priority: a.priority,
        runtime: a.runtime,
        deadline: a.deadline,
        period: a.period,
    };
    // SAFETY: a fully initialised struct of the size it declares.
    cvt(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw as *const RawSchedAttr, 0) })
        .map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | prio).
pub(crate) fn ioprio_set_self(class: i64, prio: i64) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: i64 = 1;
    // SAFETY: scalar arguments only.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (class << 13) | prio,
        )
    })
    .map(drop)
}

/// set_mempolicy(2) with a nodemask of 1024 bits, or none.
pub(crate) fn set_mempolicy(mode: i32, nodes: Option<&[u64; 16]>) -> io::Result<()> {
    let (ptr, maxnode) = match nodes {
        // maxnode counts one past the last bit the kernel reads.
        Some(m) => (m.as_ptr(), 1024u64 + 1),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: the mask (if any) holds the maxnode - 1 bits the kernel reads.
    cvt(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) }).map(drop)
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a new session keyring.
pub(crate) fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NUL-terminated name.
    cvt(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })
        .map(drop)
}

/// close_range(2): close fds `lo..=hi`, or only mark them close-on-exec.
pub(crate) fn close_range(lo: u32, hi: u32, cloexec: bool) -> io::Result<()> {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: closing fds of our own process; the callers own every fd in
    // the range (they run in a freshly cloned child).
    cvt(unsafe { libc::syscall(libc::SYS_close_range, lo, hi, flags) }).map(drop)
}

/// Bring up network interface `name` (the loopback of a new network
/// namespace): SIOCGIFFLAGS, IFF_UP, SIOCSIFFLAGS.
pub(crate) fn link_up(name: &CStr) -> io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsRawFd;
    let s = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let mut ifr = libc::ifreq {
        ifr_name: [0; libc::IFNAMSIZ],
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 },
    };
    let name = name.to_bytes_with_nul();
    if name.len() > ifr.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: both ioctls take a struct ifreq, which outlives them.
    unsafe {
        cvt(libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) as libc::c_long)?;
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        cvt(libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) as libc::c_long)?;
    }
    Ok(())
}

/// Leave a forked child now: no atexit handlers, no destructors of the
/// parent's objects, no flushing of the parent's buffers.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// write(2) to an fd number. For a forked child or a panic hook, which
/// hold a number rather than an owner; a closed number fails with EBADF.
pub(crate) fn write_raw(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the buffer is valid for its length.
    cvt(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } as libc::c_long)
        .map(|n| n as usize)
}

/// In a forked child: put fd `src` at number `dst`, for each pair, in one
/// go (no dup2 clobbers a source still to be moved); the targets lose
/// FD_CLOEXEC and the temporary copies are closed.
pub(crate) fn remap_fds(fds: &[(RawFd, RawFd)]) -> io::Result<()> {
    const BASE: RawFd = 1000;
    // SAFETY: fd numbers of our own process. The caller is a fresh child
    // that owns every fd it has, and nothing else in it holds BASE.. or
    // the targets.
    unsafe {
        for (i, (src, _)) in fds.iter().enumerate() {
            cvt(libc::dup2(*src, BASE + i as RawFd) as libc::c_long)?;
        }
        for (i, (_, dst)) in fds.iter().enumerate() {
            cvt(libc::dup2(BASE + i as RawFd, *dst) as libc::c_long)?;
        }
        for i in 0..fds.len() {
            libc::close(BASE + i as RawFd);
        }
    }
    Ok(())
}

/// argv or envp for execve(2), built ahead: once a seccomp profile is
/// loaded, execve must be the next syscall, with no allocation between.
pub(crate) struct CArray<'a> {
    ptrs: Vec<*const libc::c_char>,
    _strings: std::marker::PhantomData<&'a CString>,
}

impl<'a> CArray<'a> {
    pub(crate) fn new(strings: &'a [CString]) -> CArray<'a> {
        let ptrs = strings
            .iter()
            .map(|s| s.as_ptr())
            .chain([std::ptr::null()])
            .collect();
        CArray {
            ptrs,
            _strings: std::marker::PhantomData,
        }
    }
}

/// execve(2); returns only on failure.
pub(crate) fn execve(path: &CStr, argv: &CArray<'_>, envp: &CArray<'_>) -> io::Error {
    // SAFETY: NULL-terminated arrays of pointers to NUL-terminated strings
    // that the arrays borrow.
    unsafe { libc::execve(path.as_ptr(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// fexecve(3) (execveat with AT_EMPTY_PATH); returns only on failure.
pub(crate) fn fexecve(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let (argv, envp) = (CArray::new(argv), CArray::new(envp));
    // SAFETY: NULL-terminated arrays of pointers to NUL-terminated strings
    // that the arrays borrow; `fd` is open for the duration of the call.
    unsafe { libc::fexecve(fd.as_raw_fd(), argv.ptrs.as_ptr(), envp.ptrs.as_ptr()) };
    io::Error::last_os_error()
}
