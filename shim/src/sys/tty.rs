//! The pty master's window size.

use std::os::fd::AsFd;

use rustix::termios::Winsize;

/// TIOCSWINSZ on the terminal `fd`.
pub fn set_winsize(fd: impl AsFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws).map_err(super::errno)
}
