//! Terminal processes: berth sends the pty master over a console socket;
//! two small threads then copy between it and containerd's fifos.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

/// How long `receive` waits for berth's connection (already queued unless
/// the peer is broken), and how often it looks.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// The listening socket berth connects to; removed when dropped.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl ConsoleSocket {
    /// A short path: socket addresses are limited to 108 bytes and bundle
    /// paths can be long.
    pub fn new() -> Result<ConsoleSocket> {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("berth-pty-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(Error::io("bind console socket", &path))?;
        listener
            .set_nonblocking(true)
            .map_err(Error::io("configure console socket", &path))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Receive the master berth sent (berth has exited by now, so the
    /// connection is already queued; the deadline only guards a broken peer).
    pub fn receive(&self) -> Result<OwnedFd> {
        let deadline = Instant::now() + ACCEPT_TIMEOUT;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(ACCEPT_POLL)
                }
                Err(e) => return Err(Error::io("accept on console socket", &self.path)(e)),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(Error::io("configure console connection", &self.path))?;
        let mut buf = [0u8; 256];
        let (_, fds) = sys::socket::recv_with_fds(stream.as_fd(), &mut buf, 1).map_err(
            Error::sys(format!("receive pty master on {}", self.path.display())),
        )?;
        fds.into_iter().next().ok_or_else(|| {
            Error::State(format!("no pty master received on {}", self.path.display()))
        })
    }
}

pub struct Console {
    master: Arc<File>,
    stdin_done: Arc<Mutex<bool>>,
}

fn open_fifo(path: &str, write: bool) -> std::io::Result<File> {
    // Read-write for the output: the open never blocks on a missing reader.
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(Path::new(path))
}

impl Console {
    pub fn start(master: OwnedFd, stdin: &str, stdout: &str) -> Result<Console> {
        let master = Arc::new(File::from(master));
        let stdin_done = Arc::new(Mutex::new(false));
        if !stdout.is_empty() {
            let mut out = open_fifo(stdout, true).map_err(Error::io("open stdio fifo", stdout))?;
            let m = Arc::clone(&master);
            spawn("pty-out", move || {
                let mut buf = [0u8; 8192];
                // EIO once the last slave holder is gone.
                while let Ok(n) = (&*m).read(&mut buf) {
                    if n == 0 || out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            })?;
        }
        if !stdin.is_empty() {
            let (m, done, path) = (
                Arc::clone(&master),
                Arc::clone(&stdin_done),
                stdin.to_string(),
            );
            spawn("pty-in", move || {
                let Ok(mut f) = open_fifo(&path, false) else {
                    return;
                };
                let mut buf = [0u8; 4096];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 || *done.lock().unwrap() || (&*m).write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            })?;
        }
        Ok(Console { master, stdin_done })
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        sys::tty::set_winsize(&*self.master, height as u16, width as u16)
            .map_err(Error::sys("resize pty"))
    }

    /// A terminal has no half-close: send EOF (^D) as a tty would.
    pub fn close_stdin(&mut self) {
        let mut d = self.stdin_done.lock().unwrap();
        if !*d {
            *d = true;
            let _ = (&*self.master).write_all(&[4]);
        }
    }

    pub fn process_exited(&mut self) {
        *self.stdin_done.lock().unwrap() = true;
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(crate::reaper::THREAD_STACK)
        .spawn(f)
        .map(drop)
        .map_err(Error::io("spawn thread", name))
}
