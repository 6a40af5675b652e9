//! `terminal: true`: init allocates a pty inside the container's devpts and
//! sends the master to `--console-socket` over SCM_RIGHTS, as runc does, so
//! the caller (an engine or shim) owns the terminal.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Context, Result};

/// Connect to the console socket in the runtime's mount namespace, before
/// init enters the container (the path is a host path).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    let s =
        UnixStream::connect(path).ctx(|| format!("connect console socket {}", path.display()))?;
    Ok(OwnedFd::from(s))
}

/// Create the pty, send its master over `sock`, and make the slave init's
/// controlling terminal and stdio.
pub fn setup(sock: &OwnedFd, size: Option<(u64, u64)>) -> Result<()> {
    // The container's /dev/ptmx points at its own devpts instance.
    // SAFETY: open(2) of a constant path.
    let master = unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if master < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "open /dev/ptmx");
    }
    // SAFETY: fresh fd we own.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: ioctls on the master fd.
    unsafe {
        let unlock: libc::c_int = 0;
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "unlock pty");
        }
    }
    // TIOCGPTPEER opens the slave through the master, so no path lookup can be redirected.
    // SAFETY: ioctl returning a new fd.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY,
        )
    };
    if slave < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "open pty slave");
    }
    // SAFETY: fresh fd we own.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some((h, w)) = size {
        let ws = libc::winsize {
            ws_row: h as u16,
            ws_col: w as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: ioctl with a valid winsize.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let name = pty_name(&master);
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master to console socket")?;
    drop(master);
    // SAFETY: session and controlling-terminal setup on fds we own.
    unsafe {
        if libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "set controlling terminal");
        }
        for fd in 0..3 {
            if libc::dup2(slave.as_raw_fd(), fd) < 0 {
                return Err(std::io::Error::last_os_error()).ctx(|| "dup pty slave onto stdio");
            }
        }
    }
    Ok(())
}

fn pty_name(master: &OwnedFd) -> String {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } == 0 {
        format!("/dev/pts/{n}")
    } else {
        "/dev/ptmx".to_string()
    }
}

/// Accept one connection on `l` and take the pty master sent over it.
pub fn receive(l: &std::os::unix::net::UnixListener) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    let (s, _) = l.accept().ctx(|| "accept on console socket")?;
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .ctx(|| "receive pty master")?;
    for c in msg.cmsgs().ctx(|| "receive pty master")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just gave us this fd.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(crate::error::Error::Init(
        "no pty master arrived on the console socket".into(),
    ))
}
