//! Pseudo-terminals (rustix).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

/// Open `/dev/ptmx` (the caller's devpts instance), unlock it and open its
/// slave through the master (TIOCGPTPEER: no path lookup to redirect).
pub(crate) fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
    Ok((master, slave))
}

/// The slave's name in the master's devpts ("/dev/pts/N"), if it says.
pub(crate) fn pty_name(master: BorrowedFd<'_>) -> Option<String> {
    let name = rustix::pty::ptsname(master, Vec::new()).ok()?;
    name.into_string().ok()
}

pub(crate) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, ws)?)
}

/// Give `to` the window size of `from` (both terminals), if it has one.
pub(crate) fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, ws);
    }
}

/// Make the terminal `fd` the caller's controlling terminal (TIOCSCTTY);
/// the caller leads a new session.
pub(crate) fn set_controlling(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rustix::process::ioctl_tiocsctty(fd)?)
}
