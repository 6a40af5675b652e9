//! systemd integration passed through to the container, as runc does:
//! - NOTIFY_SOCKET: when berth's caller has one, the container gets its own
//!   socket (in the state dir, bind-mounted at /run/notify) and
//!   NOTIFY_SOCKET pointing at it; `start` (and `run`) waits for READY=1
//!   there and forwards `READY=1` and `MAINPID=<init pid>` to the caller's socket.
//! - LISTEN_FDS: socket-activation fds handed to berth (LISTEN_PID = us) are
//!   passed on ahead of --preserve-fds, with LISTEN_FDS=n and LISTEN_PID=1.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{MountBuilder, Spec};

use crate::error::{Context, Error, Result};
use crate::sys::{self, event::Watch};

/// Where the container finds its socket (runc's paths).
pub const CONTAINER_DIR: &str = "/run/notify";
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";
const STATE_SUBDIR: &str = "notify";
const SOCKET_NAME: &str = "notify.sock";

fn host_socket() -> Option<OsString> {
    std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty())
}

/// Socket-activation fds meant for us: LISTEN_FDS, if LISTEN_PID is our pid.
fn listen_fds() -> Option<i32> {
    let n: i32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    (n > 0 && pid == std::process::id()).then_some(n)
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(format!("{key}={value}"));
}

/// At create, before anything is made: adjust the container's config for
/// the caller's NOTIFY_SOCKET / LISTEN_FDS. Returns the state subdirectory
/// to create for the socket, if any.
pub fn prepare(
    spec: &mut Spec,
    state_dir: &Path,
    preserve_fds: &mut i32,
) -> Result<Option<PathBuf>> {
    let notify = host_socket().is_some();
    let listen = listen_fds();
    if !notify && listen.is_none() {
        return Ok(None);
    }
    let mut process = spec.process().clone().unwrap_or_default();
    let mut env = process.env().clone().unwrap_or_default();
    if let Some(n) = listen {
        *preserve_fds += n;
        set_env(&mut env, "LISTEN_FDS", &n.to_string());
        set_env(&mut env, "LISTEN_PID", "1");
    }
    let mut made = None;
    if notify {
        let dir = std::path::absolute(state_dir.join(STATE_SUBDIR))
            .ctx(|| format!("resolve {}", state_dir.display()))?;
        let mount = MountBuilder::default()
            .destination(CONTAINER_DIR)
            .typ("bind")
            .source(&dir)
            .options(
                ["bind", "nosuid", "noexec", "nodev"]
                    .map(String::from)
                    .to_vec(),
            )
            .build()
            .map_err(|e| Error::Invalid(format!("NOTIFY_SOCKET mount: {e}")))?;
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.push(mount);
        spec.set_mounts(Some(mounts));
        set_env(&mut env, "NOTIFY_SOCKET", CONTAINER_SOCKET);
        made = Some(dir);
    }
    process.set_env(Some(env));
    spec.set_process(Some(process));
    Ok(made)
}

/// Make the state subdirectory `prepare` asked for. Searchable by all: the
/// container's user may be anyone.
pub fn make_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).ctx(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .ctx(|| format!("chmod {}", dir.display()))
}

/// The container side of the relay, bound at start before the container
/// may run (nothing listens between create and start).
pub struct Relay {
    sock: UnixDatagram,
    host: OsString,
}

impl Relay {
    /// None unless the caller has NOTIFY_SOCKET and the container was
    /// created with one.
    pub fn bind(state_dir: &Path) -> Result<Option<Relay>> {
        let Some(host) = host_socket() else {
            return Ok(None);
        };
        let dir = state_dir.join(STATE_SUBDIR);
        if !dir.is_dir() {
            return Ok(None);
        }
        let path = dir.join(SOCKET_NAME);
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).ctx(|| format!("bind {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .ctx(|| format!("chmod {}", path.display()))?;
        Ok(Some(Relay { sock, host }))
    }

    /// Wait until the container says READY=1, then tell the caller's socket
    /// (READY=1, then MAINPID so systemd watches the init). Returns early,
    /// forwarding nothing, if the init exits first.
    pub fn wait(self, pid: i32) -> Result<()> {
        let pidfd = pidfd_open(pid)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let mut fds = [
                Watch::input(Some(self.sock.as_fd())),
                Watch::input(Some(pidfd.as_fd())),
            ];
            if let Err(e) = sys::event::poll(&mut fds, None) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).ctx(|| "wait for the container's READY=1");
            }
            if fds[0].has_input() {
                let n = self.sock.recv(&mut buf).ctx(|| "read the notify socket")?;
                if buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") {
                    return self.forward(pid);
                }
            } else if fds[1].fired() {
                return Ok(());
            }
        }
    }

    fn forward(&self, pid: i32) -> Result<()> {
        let out = UnixDatagram::unbound().ctx(|| "notify socket")?;
        let addr = host_addr(&self.host)?;
        let what = || format!("NOTIFY_SOCKET {:?}", self.host);
        out.send_to_addr(b"READY=1\n", &addr).ctx(what)?;
        out.send_to_addr(format!("MAINPID={pid}\n").as_bytes(), &addr)
            .ctx(what)?;
        Ok(())
    }
}

/// "@name" is an abstract socket, as sd_notify reads it.
fn host_addr(s: &OsString) -> Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    let b = s.as_bytes();
    let r = match b.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(Path::new(s)),
    };
    r.ctx(|| format!("NOTIFY_SOCKET {s:?}"))
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    sys::event::pidfd_open(pid).ctx(|| format!("pidfd_open {pid}"))
}
