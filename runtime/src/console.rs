//! `terminal: true`: init allocates a pty inside the container's devpts and
//! sends the master to `--console-socket` over SCM_RIGHTS, as runc does, so
//! the caller (an engine or shim) owns the terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Context, Result};
use crate::sys;

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
    let (master, slave) = sys::tty::open_pty().ctx(|| "open a pty in /dev/ptmx")?;
    if let Some((h, w)) = size {
        let _ = sys::tty::set_winsize(slave.as_fd(), h as u16, w as u16);
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
    sys::tty::set_controlling(slave.as_fd()).ctx(|| "set controlling terminal")?;
    nix::unistd::dup2_stdin(&slave)
        .and_then(|()| nix::unistd::dup2_stdout(&slave))
        .and_then(|()| nix::unistd::dup2_stderr(&slave))
        .ctx(|| "dup pty slave onto stdio")
}

fn pty_name(master: &OwnedFd) -> String {
    sys::tty::pty_name(master.as_fd()).unwrap_or_else(|| "/dev/ptmx".to_string())
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
                return sys::adopt_fd(*fd).ctx(|| "receive pty master");
            }
        }
    }
    Err(crate::error::Error::Init(
        "no pty master arrived on the console socket".into(),
    ))
}
