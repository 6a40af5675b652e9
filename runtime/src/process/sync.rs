//! The parent/init channel: a SOCK_SEQPACKET socketpair, one message per
//! datagram, so no framing is needed and a dead peer reads as EOF.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

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
    /// init → parent: setup failed with this message.
    Failed(String),
}

impl Msg {
    fn encode(&self) -> Vec<u8> {
        match self {
            Msg::Go(pid) => [b"G", pid.to_string().as_bytes()].concat(),
            Msg::RunHooks => b"H".to_vec(),
            Msg::HooksDone => b"D".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Failed(m) => [b"F", m.as_bytes()].concat(),
        }
    }

    fn decode(b: &[u8]) -> Option<Msg> {
        Some(match b.first()? {
            b'G' => Msg::Go(std::str::from_utf8(&b[1..]).ok()?.parse().ok()?),
            b'H' => Msg::RunHooks,
            b'D' => Msg::HooksDone,
            b'R' => Msg::Ready,
            b'F' => Msg::Failed(String::from_utf8_lossy(&b[1..]).into_owned()),
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
        // SAFETY: plain write of an owned buffer to an fd we own.
        let n = unsafe { libc::write(self.0.as_raw_fd(), b.as_ptr().cast(), b.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "sync: send");
        }
        Ok(())
    }

    /// Receive one message; None when the peer has gone.
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: read into a buffer we own, bounded by its length.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).ctx(|| "sync: recv");
            }
            if n == 0 {
                return Ok(None);
            }
            return Msg::decode(&buf[..n as usize])
                .map(Some)
                .ok_or_else(|| Error::Init("sync: garbled message".into()));
        }
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
