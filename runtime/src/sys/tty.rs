//! Pseudo-terminals: the ioctls no crate in the tree wraps.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// Open `/dev/ptmx` (the caller's devpts instance), unlock it and open its
/// slave through the master (TIOCGPTPEER: no path lookup to redirect).
pub(crate) fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let master = super::openat(super::CWD, c"/dev/ptmx", libc::O_RDWR | libc::O_NOCTTY, 0)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } as libc::c_long)?;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let slave = cvt(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    } as libc::c_long)?;
    // SAFETY: a fresh fd nothing else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave as i32) }))
}

/// The pty's number (its /dev/pts name), if the master says.
pub(crate) fn pty_number(master: BorrowedFd<'_>) -> Option<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    (unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } == 0).then_some(n)
}

pub(crate) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } as libc::c_long).map(drop)
}

/// Give `to` the window size of `from` (both terminals), if it has one.
pub(crate) fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    // SAFETY: winsize is plain old data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes, TIOCSWINSZ reads, one winsize.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Make the terminal `fd` the caller's controlling terminal (TIOCSCTTY);
/// the caller leads a new session.
pub(crate) fn set_controlling(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int by value.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) } as libc::c_long).map(drop)
}
