//! The listener the start action passes down, and fds received over a unix
//! socket.

use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

static LISTENER_TAKEN: AtomicBool = AtomicBool::new(false);

/// The bound listening socket the start action left at fd `fd` for the
/// serving shim. Only the first call gets it: the number has one owner.
pub fn inherited_listener(fd: RawFd) -> Option<UnixListener> {
    if LISTENER_TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: the start action execs the serving shim with the listener at
    // this number (bootstrap::start). An fd open since exec was inherited,
    // not returned by an open of ours, so no object of the shim owns it;
    // the flag above hands it out once.
    Some(unsafe { UnixListener::from_raw_fd(fd) })
}

/// One message from `sock` into `buf`, with the fds that came with it (up
/// to `max_fds`; the kernel closes any beyond), close-on-exec. Returns the
/// message's length and the fds.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(max_fds))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(super::errno)?;
    let mut fds = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(r) = m {
            fds.extend(r);
        }
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use std::io::IoSlice;
    use std::os::fd::{AsFd, AsRawFd};

    use nix::sys::socket::{sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags};
    use nix::sys::socket::{SockFlag, SockType};

    #[test]
    fn fds_arrive_owned() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        let fds = [r.as_raw_fd(), w.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(b"hello")];
        sendmsg::<()>(a.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).unwrap();
        let mut buf = [0u8; 16];
        let (n, got) = super::recv_with_fds(b.as_fd(), &mut buf, 2).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(got.len(), 2);
        // The received write end feeds the original read end.
        nix::unistd::write(&got[1], b"x").unwrap();
        let mut one = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut one).unwrap(), 1);
        // EOF of the peer: no bytes, no fds.
        drop(a);
        let (n, got) = super::recv_with_fds(b.as_fd(), &mut buf, 2).unwrap();
        assert_eq!((n, got.len()), (0, 0));
    }
}
