//! Freezing and thawing the container cgroup: the v1 freezer hierarchy
//! where the host has one, else cgroup.freeze of the cgroup2 directory.
//! Both are asynchronous in the kernel, so each change waits until the
//! state has settled (or times out and undoes a half-done freeze).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{fsutil, Cgroup, CgroupError, Layout};

const SETTLE: Duration = Duration::from_secs(5);

enum Freezer {
    /// v1 freezer.state: FROZEN, FREEZING or THAWED.
    V1(PathBuf),
    /// The cgroup2 directory: cgroup.freeze, and cgroup.events "frozen N".
    V2(PathBuf),
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fsutil::read_file(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fsutil::write_file(path, value.as_bytes()).map_err(|source| CgroupError::Write {
        field: "freezer".into(),
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

impl Cgroup {
    fn freezer(&self) -> Result<Freezer, CgroupError> {
        if self.layout != Layout::V2 {
            if let Some(d) = self.dirs.iter().find(|d| d.has_controller("freezer")) {
                return Ok(Freezer::V1(d.path.join("freezer.state")));
            }
        }
        match self.dirs.iter().find(|d| d.is_unified()) {
            Some(d) if d.path.join("cgroup.freeze").exists() => Ok(Freezer::V2(d.path.clone())),
            _ => Err(CgroupError::NoController {
                field: "pause".into(),
                controller: "freezer".into(),
            }),
        }
    }

    /// Whether the cgroup is (being) frozen: v1 FROZEN, or v2 cgroup.freeze
    /// 1. A host without a freezer, or a cgroup already gone, is not frozen.
    pub fn is_frozen(&self) -> bool {
        match self.freezer() {
            Ok(Freezer::V1(p)) => read(&p).is_ok_and(|s| s.trim() == "FROZEN"),
            Ok(Freezer::V2(d)) => read(&d.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"),
            Err(_) => false,
        }
    }

    /// Freeze (`true`) or thaw every process of the container, returning
    /// once the kernel reports the new state. A freeze that does not settle
    /// is undone, so a failed pause leaves the container running.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let f = self.freezer()?;
        // The file to poll and the line that says the change is complete.
        let (path, value, want) = match &f {
            Freezer::V1(p) => {
                let v = if frozen { "FROZEN" } else { "THAWED" };
                (p.clone(), v, v)
            }
            Freezer::V2(d) => {
                let v = if frozen { "1" } else { "0" };
                write(&d.join("cgroup.freeze"), v)?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                (d.join("cgroup.events"), v, want)
            }
        };
        let deadline = Instant::now() + SETTLE;
        let mut delay = Duration::from_micros(100);
        loop {
            // v1 needs the write repeated: a FREEZING cgroup whose tasks
            // were busy retries only when asked again.
            if let Freezer::V1(p) = &f {
                write(p, value)?;
            }
            if read(&path)?.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if frozen {
                    let _ = self.set_frozen(false);
                }
                return Err(CgroupError::HostLayout {
                    path,
                    reason: format!("did not reach {value} within {SETTLE:?}"),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
        }
    }
}
