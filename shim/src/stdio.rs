//! The container's stdio through the fifos containerd creates (file and
//! logger-binary URIs: see logio).
//!
//! stdout/stderr: the fifo itself becomes the process's fd, opened
//! read-write so the open never blocks and the process never takes SIGPIPE
//! when the reader (ctr) goes away; the reader still sees EOF once the
//! process and its children are gone. No copy thread, no buffer.
//!
//! stdin: a fifo read end opened before the writer connects would give the
//! process an immediate EOF, so a small thread waits for the writer and
//! copies into a pipe; closing that pipe is CloseIO.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::berth::Io;
use crate::error::{Error, Result};
use crate::logio::{self, Uri};
use crate::reaper::Reaper;

/// Write end of a stdin pipe, shared with its copy thread so CloseIO can
/// close it.
pub type StdinCloser = Arc<Mutex<Option<File>>>;

fn open_output(path: &str) -> Result<Option<OwnedFd>> {
    if path.is_empty() {
        return Ok(None);
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io("open stdio fifo", path))?;
    Ok(Some(f.into()))
}

fn open_stdin(path: &str) -> Result<(Option<OwnedFd>, Option<StdinCloser>)> {
    if path.is_empty() {
        return Ok((None, None));
    }
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe for stdin"))?;
    let closer: StdinCloser = Arc::new(Mutex::new(Some(File::from(w))));
    let c = Arc::clone(&closer);
    let path = path.to_string();
    std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(crate::reaper::THREAD_STACK)
        .spawn(move || copy_stdin(&path, &c))
        .map_err(Error::io("spawn stdin thread", "stdin"))?;
    Ok((Some(r), Some(closer)))
}

fn copy_stdin(path: &str, w: &StdinCloser) {
    // Blocks until containerd's side opens the fifo for writing.
    let Ok(mut fifo) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(Path::new(path))
    else {
        w.lock().unwrap().take();
        return;
    };
    let mut buf = [0u8; 8192];
    loop {
        let n = match fifo.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut g = w.lock().unwrap();
        let Some(f) = g.as_mut() else { return };
        if f.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    w.lock().unwrap().take();
}

/// Open the three streams; the returned closer belongs to stdin. `id` and
/// `namespace` are for a logger binary (see logio).
pub fn open(
    stdin: &str,
    stdout: &str,
    stderr: &str,
    reaper: &Reaper,
    id: &str,
    namespace: &str,
) -> Result<(Io, Option<StdinCloser>)> {
    // Outputs first: a failure after the stdin thread started would leave
    // it waiting on the fifo forever.
    let (stdout, stderr) = match logio::parse(stdout)? {
        Uri::Fifo => (open_output(stdout)?, open_output(stderr)?),
        Uri::File(path) => logio::open_file(&path)?,
        Uri::Binary { path, args } => logio::start_binary(reaper, &path, &args, id, namespace)?,
    };
    let (stdin, closer) = open_stdin(stdin)?;
    Ok((
        Io {
            stdin,
            stdout,
            stderr,
        },
        closer,
    ))
}
