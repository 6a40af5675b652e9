//! The state store: one directory per container under `--root`, holding
//! `state.json` (written atomically) and the `exec.fifo` that holds a created
//! container before `start`. The directory itself is the per-container lock
//! (flock on its fd), so no extra lock file has to be cleaned up.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};

pub const OCI_VERSION: &str = "1.0.2-dev";
const STATE_FILE: &str = "state.json";
const CONFIG_FILE: &str = "config.json";
pub const FIFO: &str = "exec.fifo";
/// Where `restore` binds the rootfs for CRIU while CRIU runs.
const CRIU_ROOT: &str = "criu-root";

/// What berth remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22):
    /// with the pid it names the process uniquely, so a reused pid is not
    /// mistaken for our container.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Cgroup,
    /// Whether the container has its own pid namespace: if not, killing the
    /// init does not kill the rest, so kill/delete must walk the cgroup.
    pub own_pidns: bool,
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
    /// Set in the records `create` writes before the container exists (see
    /// CRASH-CONSISTENCY.md): what they name is to be removed, not started.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub creating: bool,
}

impl Stored {
    /// An error for `op` if the container runs without a cgroup (a rootless
    /// container whose user could not write the cgroup tree).
    pub fn need_cgroup(&self, op: &str) -> Result<()> {
        if self.cgroup.is_none() {
            return Err(Error::Rootless(format!(
                "{op}: container {} has no cgroup (it was created by a user who cannot write the cgroup tree)",
                self.id
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is under way, or died before its record was final.
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The `state` output: the OCI state plus runc's extra fields, which engines parse.
#[derive(Debug, Serialize)]
pub struct StateJson<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'static str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

/// runc's id rule: letters, digits, `_`, `+`, `-`, `.`; never `.` or `..`.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// A container's state directory, locked for the lifetime of this value.
pub struct Dir {
    pub path: PathBuf,
    _lock: File,
}

impl Dir {
    /// Create a new, locked directory for `id`; an existing one is an error.
    pub fn create(root: &Path, id: &str) -> Result<Dir> {
        validate_id(id)?;
        let mut b = fs::DirBuilder::new();
        b.mode(0o700);
        // Engines name a root whose parents runc creates (dockerd:
        // <exec-root>/runtime-<name>/moby): mkdir -p, but only when needed.
        let made = match b.create(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(root),
            r => r,
        };
        if let Err(e) = made {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                let hint = crate::rootless::state_root_hint(&e);
                return Err(e).ctx(|| format!("create state root {}{hint}", root.display()));
            }
        }
        let path = root.join(id);
        match b.create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(e).ctx(|| format!("create {}", path.display())),
        }
        Self::lock(path)
    }

    /// Lock the existing directory of `id`.
    pub fn open(root: &Path, id: &str) -> Result<Dir> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.join(STATE_FILE).exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        Self::lock(path)
    }

    /// Lock the directory of `id` whatever it holds (`delete --force` of a
    /// container whose state.json is missing or unreadable).
    pub fn open_any(root: &Path, id: &str) -> Result<Dir> {
        validate_id(id)?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(Error::NotFound(id.to_string()));
        }
        Self::lock(path)
    }

    fn lock(path: PathBuf) -> Result<Dir> {
        let f = File::open(&path).ctx(|| format!("open {}", path.display()))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)
            .ctx(|| format!("lock {}", path.display()))?;
        Ok(Dir { path, _lock: f })
    }

    pub fn load(&self) -> Result<Stored> {
        load(&self.path)
    }

    /// Write state.json atomically: a reader never sees a half-written file.
    pub fn save(&self, st: &Stored) -> Result<()> {
        let tmp = self.path.join(".state.json.tmp");
        let data = serde_json::to_vec(st).map_err(Error::encode("the state record"))?;
        let mut f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(&data)
            .ctx(|| format!("write {}", tmp.display()))?;
        drop(f);
        fs::rename(&tmp, self.path.join(STATE_FILE)).ctx(|| format!("rename {}", tmp.display()))
    }

    pub fn save_config(&self, raw: &[u8]) -> Result<()> {
        let p = self.path.join(CONFIG_FILE);
        fs::write(&p, raw).ctx(|| format!("write {}", p.display()))
    }

    /// The config saved at create, if there is one.
    pub fn has_config(&self) -> bool {
        self.path.join(CONFIG_FILE).exists()
    }

    pub fn load_config(&self) -> Result<oci_spec::runtime::Spec> {
        let p = self.path.join(CONFIG_FILE);
        let data = fs::read(&p).ctx(|| format!("read {}", p.display()))?;
        serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    pub fn criu_root(&self) -> PathBuf {
        self.path.join(CRIU_ROOT)
    }

    /// Remove the directory and everything in it (only files of ours).
    pub fn destroy(self) -> Result<()> {
        // A restore that died while CRIU ran leaves the rootfs bound here:
        // the walk below would go through it and empty the rootfs.
        let criu_root = self.criu_root();
        if nix::mount::umount2(&criu_root, nix::mount::MntFlags::MNT_DETACH).is_ok() {
            let _ = fs::remove_dir(&criu_root);
        }
        if fs::remove_dir_all(&self.path).is_ok() {
            return Ok(());
        }
        // Out of file descriptors (EMFILE is a reason an undo runs): the
        // lock's may be the one the walk needs.
        let Dir { path, _lock } = self;
        drop(_lock);
        fs::remove_dir_all(&path).ctx(|| format!("remove {}", path.display()))
    }
}

/// Read the state of the container whose directory is `dir`, without the
/// lock. A record naming another container (a copied or replaced file) is
/// refused: acting on it would touch that container.
pub fn load(dir: &Path) -> Result<Stored> {
    let p = dir.join(STATE_FILE);
    let data = fs::read(&p).ctx(|| format!("read {}", p.display()))?;
    let st: Stored = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    let name = dir.file_name().map(|n| n.to_string_lossy());
    if name.as_deref() != Some(st.id.as_str()) {
        return Err(Error::Corrupt {
            path: p,
            reason: format!("names container {:?}", st.id),
        });
    }
    Ok(st)
}

/// Start time (clock ticks since boot) of a live process, or None if it is gone.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // rest starts at field 3 (state); starttime is field 22.
    fields.nth(22 - 4)?.parse().ok()
}

impl Stored {
    pub fn alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid) == Some(self.start_time)
    }

    /// Derive the status from the kernel's view, never from a cached field:
    /// there is no daemon to keep one up to date.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.alive() {
            return Status::Stopped;
        }
        if self.creating {
            return Status::Creating;
        }
        if dir.join(FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn json<'a>(&'a self, status: Status) -> StateJson<'a> {
        StateJson {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: "",
            annotations: &self.annotations,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1.2_3+x", "A9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_start_time_is_stable_and_pid_reuse_is_detected() {
        let me = std::process::id() as i32;
        let t = proc_start_time(me).expect("own stat");
        assert_eq!(proc_start_time(me), Some(t));
        assert_eq!(proc_start_time(i32::MAX), None);
    }
}
