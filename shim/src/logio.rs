//! containerd's non-fifo stdio URIs (`ctr run --log-uri`, CRI log drivers):
//!
//! - `file:///abs/path`: stdout and stderr append to that file directly;
//!   no copy, the container holds the only writers.
//! - `binary:///abs/logger?k=v&...`: a logger process gets the read ends of
//!   a stdout and a stderr pipe as fd 3 and 4 and a readiness pipe as fd 5;
//!   it is started with `k v ...` as arguments and CONTAINER_ID /
//!   CONTAINER_NAMESPACE in its environment. The container starts only once
//!   the logger wrote to or closed fd 5. It drains until EOF, which comes
//!   when the container's last writer is gone, and its exit is collected by
//!   the reaper.
//!
//! containerd passes the same URI for stdout and stderr; stdout's decides.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::reaper::Reaper;
use crate::sys;

pub enum Uri {
    /// A fifo path (plain or `fifo://`), handled by the caller.
    Fifo,
    File(String),
    Binary {
        path: String,
        args: Vec<String>,
    },
}

fn unhex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// URL percent-decoding; `plus` also maps '+' to a space, as in a query.
fn decode(s: &str, plus: bool) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (h, l) = match (b.get(i + 1), b.get(i + 2)) {
                    (Some(&h), Some(&l)) => (unhex(h), unhex(l)),
                    _ => (None, None),
                };
                let (Some(h), Some(l)) = (h, l) else {
                    return Err(Error::invalid("stdio uri", format!("bad escape in {s:?}")));
                };
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            b'+' if plus => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::invalid("stdio uri", format!("not UTF-8: {s:?}")))
}

pub fn parse(uri: &str) -> Result<Uri> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Ok(Uri::Fifo);
    };
    let bad = |msg: &str| Error::invalid("stdio uri", format!("{uri}: {msg}"));
    // Only `scheme:///path`: a host part has no meaning for a local file.
    let Some(rest) = rest.strip_prefix('/').map(|_| rest) else {
        return Err(bad("expected an absolute path with no host"));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = decode(path, false)?;
    match scheme {
        "fifo" => Ok(Uri::Fifo),
        "file" if query.is_empty() => Ok(Uri::File(path)),
        "file" => Err(bad("a file URI takes no query")),
        "binary" => {
            let mut args = Vec::new();
            for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                args.push(decode(k, true)?);
                let v = decode(v, true)?;
                if !v.is_empty() {
                    args.push(v);
                }
            }
            Ok(Uri::Binary { path, args })
        }
        _ => Err(bad("unsupported scheme (fifo, file and binary are)")),
    }
}

/// stdout and stderr of the container, appending to one file.
pub fn open_file(path: &str) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("create log directory", dir))?;
    }
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(Error::io("open log file", path))?;
    let f2 = f.try_clone().map_err(Error::io("dup log file", path))?;
    Ok((Some(f.into()), Some(f2.into())))
}

const READY_TIMEOUT_MS: u16 = 10_000;

fn pipe(what: &'static str) -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys(what))
}

/// Start the logger and wait until it is ready; returns the write ends the
/// container's stdout and stderr become.
pub fn start_binary(
    reaper: &Reaper,
    path: &str,
    args: &[String],
    id: &str,
    namespace: &str,
) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    // Checked first because std reports a failed exec after waiting for the
    // child, which races with the reaper's waitpid(-1).
    nix::unistd::access(path, nix::unistd::AccessFlags::X_OK)
        .map_err(|e| Error::io("start logger", path)(e.into()))?;
    let (out_r, out_w) = pipe("pipe for logger stdout")?;
    let (err_r, err_w) = pipe("pipe for logger stderr")?;
    let (ready_r, ready_w) = pipe("pipe for logger readiness")?;
    let mut cmd = Command::new(path);
    cmd.args(args)
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let fds = [
        (out_r.as_raw_fd(), 3),
        (err_r.as_raw_fd(), 4),
        (ready_w.as_raw_fd(), 5),
    ];
    sys::spawn::place_fds(&mut cmd, fds, false);
    let child = cmd.spawn().map_err(Error::io("start logger", path))?;
    // The shim keeps no read end (the logger must be the only reader) and
    // no readiness writer (so the logger's exit reads as EOF below).
    drop((cmd, out_r, err_r, ready_w));
    let pid = child.id() as i32;
    reaper.watch(pid, |_| {});
    // A logger that never gets ready would hang Create (and containerd's
    // call) forever: give up after a while and kill it.
    let mut pfd = [nix::poll::PollFd::new(
        ready_r.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = loop {
        match nix::poll::poll(&mut pfd, READY_TIMEOUT_MS) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => break r.map_err(Error::sys("poll logger readiness"))?,
        }
    };
    if n == 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        return Err(Error::invalid(
            "stdout",
            format!("logger {path} not ready (fd 5 neither written nor closed) within 10s"),
        ));
    }
    let mut b = [0u8; 1];
    File::from(ready_r)
        .read(&mut b)
        .map_err(Error::io("wait for logger readiness", path))?;
    Ok((Some(out_w), Some(err_w)))
}
