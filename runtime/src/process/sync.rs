//! The parent/init channel: a SOCK_SEQPACKET socketpair, one message per
//! datagram, so no framing is needed and a dead peer reads as EOF.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use crate::error::{Context, Error, Result};

/// Messages between berth and the container init.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// parent → init: id maps written and cgroup joined; go on. Carries
    /// init's pid as the host sees it, which hooks must be given.
    Go(i32),
    /// init → parent: the environment exists; run prestart/createRuntime hooks.
    RunHooks,
    /// parent → init: those hooks succeeded.
    HooksDone,
    /// init → parent: set up; about to block on exec.fifo.
    Ready,
    /// child → parent: joining the cgroup by itself failed somewhere; write
    /// its pid to every hierarchy (see cgroups::Joiner).
    JoinCgroup,
    /// parent → child: done, the child is in its cgroup (init's setup
    /// overlaps the v1 migration, which waits for an RCU grace period).
    InCgroup,
    /// init → parent: setup failed with this message.
    Failed(String),
    /// init → parent: the seccomp notify listener fd rides along (SCM_RIGHTS),
    /// for the parent to hand to linux.seccomp.listenerPath.
    SeccompFd,
    /// parent → init: the state record is saved; init may outlive berth.
    Commit,
    /// init → parent: parent-death signal dropped; `create` may exit.
    Detached,
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go(pid) => [b"G", pid.to_string().as_bytes()].concat(),
            Msg::RunHooks => b"H".to_vec(),
            Msg::HooksDone => b"D".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::JoinCgroup => b"J".to_vec(),
            Msg::InCgroup => b"C".to_vec(),
            Msg::Failed(m) => [b"F", m.as_bytes()].concat(),
            Msg::SeccompFd => b"S".to_vec(),
            Msg::Commit => b"K".to_vec(),
            Msg::Detached => b"X".to_vec(),
        }
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        Some(match b.first()? {
            b'G' => Msg::Go(std::str::from_utf8(&b[1..]).ok()?.parse().ok()?),
            b'H' => Msg::RunHooks,
            b'D' => Msg::HooksDone,
            b'R' => Msg::Ready,
            b'J' => Msg::JoinCgroup,
            b'C' => Msg::InCgroup,
            b'F' => Msg::Failed(String::from_utf8_lossy(&b[1..]).into_owned()),
            b'S' => Msg::SeccompFd,
            b'K' => Msg::Commit,
            b'X' => Msg::Detached,
            _ => return None,
        })
    }
}

pub struct Channel(pub OwnedFd);

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ctx(|| "socketpair")?;
    Ok((Channel(a), Channel(b)))
}

impl Channel {
    pub fn send(&self, m: &Msg) -> Result<()> {
        let b = m.encode();
        nix::unistd::write(&self.0, &b)
            .map(drop)
            .ctx(|| "sync: send")
    }

    /// Send `m` with `fd` attached as SCM_RIGHTS.
    pub fn send_fd(&self, m: &Msg, fd: BorrowedFd) -> Result<()> {
        let b = m.encode();
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&b)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .ctx(|| "sync: send fd")?;
        Ok(())
    }

    /// Receive one message; None when the peer has gone. An fd sent along is closed.
    pub fn recv(&self) -> Result<Option<Msg>> {
        Ok(self.recv_fd()?.0)
    }

    /// The length of the next message, waiting for it (0 at EOF). Messages
    /// are a byte or a short error text: a buffer sized to each one, not a
    /// fixed 64 KiB one, keeps berth's and the init's heap small.
    fn next_len(&self) -> nix::Result<usize> {
        // SEQPACKET keeps message boundaries, and MSG_TRUNC makes the peek
        // return the whole message's length however small the buffer.
        nix::sys::socket::recv(
            self.0.as_raw_fd(),
            &mut [],
            MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC,
        )
    }

    /// Receive one message and the fd that came with it, if any. recvmsg
    /// costs what read does, and a plain read would drop an attached fd.
    pub fn recv_fd(&self) -> Result<(Option<Msg>, Option<OwnedFd>)> {
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        loop {
            let mut buf = match self.next_len() {
                Ok(n) => vec![0u8; n.max(1)],
                Err(nix::errno::Errno::EINTR) => {
                    crate::interrupt::check()?;
                    continue;
                }
                Err(e) => return Err(e).ctx(|| "sync: recv"),
            };
            let mut iov = [IoSliceMut::new(&mut buf)];
            let r = recvmsg::<()>(
                self.0.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let msg = match r {
                Err(nix::errno::Errno::EINTR) => {
                    crate::interrupt::check()?;
                    continue;
                }
                Err(e) => return Err(e).ctx(|| "sync: recv"),
                Ok(m) => m,
            };
            let mut fd = None;
            for c in msg.cmsgs().ctx(|| "sync: recv control data")? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for f in fds {
                        let owned = crate::sys::adopt_fd(f).ctx(|| "sync: received fd")?;
                        fd.get_or_insert(owned);
                    }
                }
            }
            let n = msg.bytes;
            if n == 0 {
                return Ok((None, fd));
            }
            return Msg::decode(&buf[..n])
                .map(|m| (Some(m), fd))
                .ok_or_else(|| Error::Init("sync: garbled message".into()));
        }
    }

    /// The error the peer sent before it went away, if it did: read without
    /// waiting, past the messages before it. Once the peer has closed its
    /// end everything it sent is queued here, but the kernel reports
    /// ECONNRESET (a message of ours it never read) before that queue, and a
    /// send of ours fails with EPIPE without reading it at all: a sync error
    /// is only worth reporting when there is no such message.
    pub fn failure_sent(&self) -> Option<String> {
        for _ in 0..64 {
            let mut buf = match nix::sys::socket::recv(
                self.0.as_raw_fd(),
                &mut [],
                MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => vec![0u8; n.max(1)],
                Err(nix::errno::Errno::ECONNRESET | nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            };
            let n = match nix::sys::socket::recv(
                self.0.as_raw_fd(),
                &mut buf,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(nix::errno::Errno::ECONNRESET | nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            };
            if let Some(Msg::Failed(e)) = Msg::decode(&buf[..n]) {
                return Some(e);
            }
        }
        None
    }

    /// Wait for Go and return the pid it carries.
    pub fn expect_go(&self) -> Result<i32> {
        match self.recv()? {
            Some(Msg::Go(pid)) => Ok(pid),
            Some(m) => Err(Error::Init(format!("sync: expected Go, got {m:?}"))),
            None => Err(Error::Init("sync: parent went away".into())),
        }
    }

    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            Some(m) if m == want => Ok(()),
            Some(Msg::Failed(e)) => Err(Error::Init(e)),
            Some(m) => Err(Error::Init(format!("sync: expected {want:?}, got {m:?}"))),
            None => Err(Error::Init(format!("sync: peer went away before {want:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_any_length_come_through_whole() {
        let (a, b) = pair().unwrap();
        let long = "x".repeat(100_000);
        for m in [Msg::Go(4242), Msg::Ready, Msg::Failed(long.clone())] {
            a.send(&m).unwrap();
            assert_eq!(b.recv().unwrap(), Some(m));
        }
        a.send(&Msg::Failed(long.clone())).unwrap();
        drop(a);
        assert_eq!(b.failure_sent(), Some(long));
        assert_eq!(b.recv().unwrap(), None);
    }

    #[test]
    fn an_fd_rides_along() {
        let (a, b) = pair().unwrap();
        let (r, _w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsFd;
        a.send_fd(&Msg::SeccompFd, r.as_fd()).unwrap();
        let (m, fd) = b.recv_fd().unwrap();
        assert_eq!(m, Some(Msg::SeccompFd));
        assert!(fd.is_some());
    }
}
