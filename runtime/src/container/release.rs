//! `start`'s half of exec.fifo: open the read side, which lets the init's
//! blocking open for writing return, then collect what the init writes
//! until EOF (its write side closes on execve).
//!
//! The read side is opened O_NONBLOCK, which succeeds with no writer, and
//! the wait is a poll(2) on the fifo together with a pidfd of the init. A
//! blocking open would wait for ever for an init that died (killed, OOM)
//! after create, and std retries an open interrupted by a caught signal, so
//! not even SIGTERM would end it.
//!
//! The fifo stays in place until the init has connected and written its
//! first byte: should `start` be interrupted or killed before that, the
//! container is still "created" (the init, finding no reader for its byte,
//! waits for the next one) and another `start` can release it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use crate::error::{Context, Error, Result};
use crate::sys::{self, event::Watch};

/// How long to leave the fifo out of the poll after a hangup that came
/// with no data, so a kernel that reports one before any writer connected
/// cannot turn the wait into a busy loop.
const HANGUP_BACKOFF: Duration = Duration::from_millis(20);

/// Release the init `pidfd` refers to (`pid` for messages) through the
/// fifo at `path`; returns every byte it wrote. `connected` runs once,
/// after the first byte arrived (the init has been released).
pub(super) fn release(
    path: &Path,
    pidfd: &OwnedFd,
    pid: i32,
    mut connected: impl FnMut(),
) -> Result<Vec<u8>> {
    let cpath = sys::cstring(path.as_os_str())
        .map_err(|_| Error::Invalid(format!("path with NUL: {}", path.display())))?;
    let fifo = sys::openat(sys::CWD, &cpath, libc::O_RDONLY | libc::O_NONBLOCK, 0)
        .ctx(|| format!("open {}", path.display()))?;
    // A fault point only: the loop below checks for a caught signal.
    crate::interrupt::point("start:opened");
    let mut buf = Vec::new();
    let mut backoff = false;
    loop {
        if let Err(e) = crate::interrupt::check() {
            // Released meanwhile? Then the state must say so.
            if buf.is_empty() && drain(&fifo, &mut buf).is_ok() && !buf.is_empty() {
                connected();
            }
            return Err(match e {
                Error::Interrupted(sig) => Error::StartInterrupted(sig),
                e => e,
            });
        }
        let mut w = [
            Watch::input((!backoff).then(|| fifo.as_fd())),
            Watch::input(Some(pidfd.as_fd())),
        ];
        let timeout = backoff.then_some(HANGUP_BACKOFF);
        match sys::event::poll(&mut w, timeout) {
            Ok(_) => {}
            // A caught SIGTERM/SIGINT/SIGHUP: `check` above reports it.
            Err(e) if sys::is_errno(&e, libc::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "wait for the container init"),
        }
        let init_exited = w[1].fired();
        if w[0].fired() || init_exited {
            let had = buf.len();
            let eof = drain(&fifo, &mut buf)?;
            if had == 0 && !buf.is_empty() {
                connected();
            }
            if eof && !buf.is_empty() {
                return Ok(buf);
            }
            // A hangup with nothing ever read: no writer has connected yet
            // on this kernel's reckoning, or one left without writing (an
            // init that failed right there, which the pidfd shows soon).
            backoff = eof;
        } else {
            backoff = false;
        }
        if init_exited {
            if buf.is_empty() {
                return Err(Error::Init(format!("exited before start (pid {pid})")));
            }
            // Released, then gone: the fifo has no writer any more, so what
            // was read is all there is.
            return Ok(buf);
        }
    }
}

/// Read what the fifo holds without blocking; true at EOF (no writer).
fn drain(fifo: &OwnedFd, buf: &mut Vec<u8>) -> Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        match sys::event::read(fifo, &mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if sys::is_errno(&e, libc::EAGAIN) => return Ok(false),
            Err(e) if sys::is_errno(&e, libc::EINTR) => {}
            Err(e) => return Err(e).ctx(|| "read exec fifo"),
        }
    }
}
