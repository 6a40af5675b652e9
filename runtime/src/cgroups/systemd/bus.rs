//! The systemd driver's D-Bus client: a `berth-systemd` helper process
//! (`helper`) that berth starts on the first systemd call of a command and
//! asks over a pipe (`wire`). The D-Bus library lives only in the helper,
//! so a berth or a shim that never uses the driver neither loads nor pays
//! for it, and no D-Bus thread ever runs in berth (where a signal that
//! `run` forwards could land on it, and where none may start once children
//! go to another pid namespace).
//!
//! The helper is found next to the binary berth was started from (before
//! it re-executed itself from a sealed copy, see `crate::seal`), or at
//! `$BERTH_SYSTEMD_HELPER`. It dies with the process that started it (see
//! `helper`) and is killed when the [`Bus`] is dropped.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::props::Prop;
use super::wire::{self, Reply, Request, HELPER_ENV, HELPER_NAME, JOB_TIMEOUT};
pub use super::wire::{BusError, LOAD_FAILED, NO_SUCH_UNIT, UNIT_EXISTS};

/// How long berth waits for any one answer: a job's own limit (which the
/// helper enforces and reports) and time to spare. Past it the helper is
/// taken to hang in a call systemd never answers, and is killed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2 * JOB_TIMEOUT.as_secs());

/// The two ends of the helper's pipes, and what is read but not used yet.
struct Pipe {
    tx: File,
    rx: File,
    /// The helper's stderr: the reason when it dies.
    err: Option<File>,
    buf: Vec<u8>,
}

/// A connection to systemd's manager, through the helper.
pub struct Bus {
    pipe: RefCell<Pipe>,
    /// The helper: None for a helper served in-process (tests).
    child: Option<Child>,
    /// The helper's path, for errors.
    path: String,
}

/// Where the helper is, and whether $BERTH_SYSTEMD_HELPER said so.
fn helper_path() -> (PathBuf, bool) {
    if let Some(p) = std::env::var_os(HELPER_ENV).filter(|p| !p.is_empty()) {
        return (p.into(), true);
    }
    let exe = crate::seal::original_exe();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    (dir.join(HELPER_NAME), false)
}

/// The user bus, as runc finds it: $DBUS_SESSION_BUS_ADDRESS if set, else
/// `$XDG_RUNTIME_DIR/bus` if that socket exists. Checked at create before
/// anything is made, so a missing bus fails first.
pub fn user_address() -> Result<String, BusError> {
    let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    pick_user_address(
        env("DBUS_SESSION_BUS_ADDRESS"),
        env("XDG_RUNTIME_DIR"),
        |p| std::path::Path::new(p).exists(),
    )
}

fn pick_user_address(
    session: Option<String>,
    xdg: Option<String>,
    exists: impl Fn(&str) -> bool,
) -> Result<String, BusError> {
    if let Some(a) = session {
        return Ok(a);
    }
    let Some(xdg) = xdg else {
        return Err(BusError::NoUserBus(
            "$XDG_RUNTIME_DIR/bus ($XDG_RUNTIME_DIR is unset)".into(),
        ));
    };
    let path = format!("{}/bus", xdg.trim_end_matches('/'));
    if !exists(&path) {
        return Err(BusError::NoUserBus(path));
    }
    Ok(format!("unix:path={}", escape_address_value(&path)))
}

/// D-Bus address values escape every byte outside `[-0-9A-Za-z_/.\\*]`.
fn escape_address_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-_/.\\*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

impl Bus {
    pub fn system() -> Result<Bus, BusError> {
        Bus::connect(Request::ConnectSystem)
    }

    /// The caller's own bus, where its systemd instance is, authenticating
    /// as `uid` (the caller's uid outside any user namespace: the bus
    /// daemon compares the claim with the socket peer's credentials).
    pub fn user(uid: u32) -> Result<Bus, BusError> {
        let address = user_address()?;
        Bus::connect(Request::ConnectUser { uid, address })
    }

    fn connect(how: Request) -> Result<Bus, BusError> {
        let bus = Bus::spawn()?;
        bus.call(how)?;
        Ok(bus)
    }

    fn spawn() -> Result<Bus, BusError> {
        let (path, from_env) = helper_path();
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(BusError::NoHelper {
                path: shown,
                from_env,
            });
        }
        let mut child = Command::new(&path)
            .arg("--parent")
            .arg(std::process::id().to_string())
            // Its own process group: a ^C on berth's terminal is berth's
            // to act on; the helper goes when berth does.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BusError::Helper {
                path: shown.clone(),
                reason: format!("cannot start it: {e}"),
            })?;
        let tx = OwnedFd::from(child.stdin.take().expect("piped"));
        let rx = OwnedFd::from(child.stdout.take().expect("piped"));
        let err = OwnedFd::from(child.stderr.take().expect("piped"));
        Ok(Bus {
            pipe: RefCell::new(Pipe {
                tx: tx.into(),
                rx: rx.into(),
                err: Some(err.into()),
                buf: Vec::new(),
            }),
            child: Some(child),
            path: shown,
        })
    }

    /// A helper served at the other ends of `tx` and `rx` (tests).
    #[cfg(test)]
    pub(super) fn over(tx: OwnedFd, rx: OwnedFd) -> Bus {
        Bus {
            pipe: RefCell::new(Pipe {
                tx: tx.into(),
                rx: rx.into(),
                err: None,
                buf: Vec::new(),
            }),
            child: None,
            path: HELPER_NAME.into(),
        }
    }

    /// Connect a helper made by `over` to a bus at `address` (tests).
    #[cfg(all(test, feature = "systemd"))]
    pub(super) fn connect_to(&self, address: &str) -> Result<(), BusError> {
        let address = address.to_owned();
        self.call(Request::ConnectAddress { address }).map(drop)
    }

    fn fail(&self, reason: String) -> BusError {
        BusError::Helper {
            path: self.path.clone(),
            reason,
        }
    }

    /// Send one request and wait for its reply.
    fn call(&self, req: Request) -> Result<Option<String>, BusError> {
        let mut pipe = self.pipe.borrow_mut();
        if let Err(e) = pipe.tx.write_all(&wire::encode(&req)) {
            return Err(self.died(&mut pipe, format!("cannot send it a request: {e}")));
        }
        let line = match read_line(&mut pipe, REPLY_TIMEOUT) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(self.died(&mut pipe, "exited without an answer".into())),
            Err(e) => return Err(self.fail(e)),
        };
        let reply: Reply = serde_json::from_slice(&line)
            .map_err(|e| self.fail(format!("an answer berth cannot read ({e})")))?;
        reply
    }

    /// The error for a helper that is gone: its exit status and the last
    /// line it wrote to stderr, which says why.
    fn died(&self, pipe: &mut Pipe, what: String) -> BusError {
        // Safe to read to the end: the helper's stdout is closed, so it has
        // exited or is about to.
        let mut err = String::new();
        if let Some(e) = &mut pipe.err {
            let _ = e.read_to_string(&mut err);
        }
        let last = err.lines().rev().find(|l| !l.trim().is_empty());
        match last {
            Some(l) => self.fail(format!("{what}: {}", l.trim())),
            None => self.fail(what),
        }
    }

    /// The manager's own cgroup ("ControlGroup"): for a user's instance
    /// `/user.slice/user-<uid>.slice/user@<uid>.service`.
    pub fn manager_cgroup(&self) -> Result<String, BusError> {
        self.string(Request::ManagerCgroup)
    }

    /// The Manager's Version property, e.g. "252.39-1~deb12u2".
    pub fn version(&self) -> Result<String, BusError> {
        self.string(Request::Version)
    }

    fn string(&self, req: Request) -> Result<String, BusError> {
        self.call(req)?
            .ok_or_else(|| self.fail("no value in its answer".into()))
    }

    /// Start the unit and wait for its job to finish "done".
    pub fn start_transient_unit(&self, unit: &str, props: &[Prop]) -> Result<(), BusError> {
        self.call(Request::StartTransientUnit {
            unit: unit.to_owned(),
            props: props.to_vec(),
        })
        .map(drop)
    }

    /// Stop the unit and wait for its job to finish "done".
    pub fn stop_unit(&self, unit: &str) -> Result<(), BusError> {
        let unit = unit.to_owned();
        self.call(Request::StopUnit { unit }).map(drop)
    }

    /// Move processes into a unit's own cgroup.
    pub fn attach_processes_to_unit(&self, unit: &str, pids: &[u32]) -> Result<(), BusError> {
        self.call(Request::AttachProcessesToUnit {
            unit: unit.to_owned(),
            pids: pids.to_vec(),
        })
        .map(drop)
    }

    pub fn reset_failed_unit(&self, unit: &str) -> Result<(), BusError> {
        let unit = unit.to_owned();
        self.call(Request::ResetFailedUnit { unit }).map(drop)
    }

    pub fn set_unit_properties(&self, unit: &str, props: &[Prop]) -> Result<(), BusError> {
        self.call(Request::SetUnitProperties {
            unit: unit.to_owned(),
            props: props.to_vec(),
        })
        .map(drop)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        // The helper holds no state worth a goodbye: killed, not asked, so
        // that a helper stuck in a call cannot keep berth waiting.
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The next line from the helper, without its newline; None at EOF.
fn read_line(pipe: &mut Pipe, timeout: Duration) -> Result<Option<Vec<u8>>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(i) = pipe.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = pipe.buf.drain(..=i).collect();
            line.pop();
            return Ok(Some(line));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pipe.rx.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Err(format!("no answer within {timeout:?}")),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("waiting for its answer: {e}")),
        }
        let mut chunk = [0u8; 4096];
        match pipe.rx.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => pipe.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading its answer: {e}")),
        }
    }
}

#[cfg(test)]
#[path = "bus_tests.rs"]
mod tests;
