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

#[cfg(test)]
mod tests {
    #[test]
    fn winsize_is_rows_then_cols() {
        let pty = nix::pty::openpty(None, None).unwrap();
        super::set_winsize(&pty.master, 24, 132).unwrap();
        let ws = rustix::termios::tcgetwinsize(&pty.slave).unwrap();
        assert_eq!((ws.ws_row, ws.ws_col), (24, 132));
    }
}
