//! TEMP STUB
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CgroupError(String);
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}
impl Cgroup {
    pub fn resolve(p: Option<&Path>, id: &str) -> Result<Cgroup, CgroupError> {
        let rel = p
            .map(|p| p.to_string_lossy().trim_start_matches('/').to_string())
            .unwrap_or(id.to_string());
        Ok(Cgroup {
            dirs: ["memory", "pids", "cpu"]
                .iter()
                .map(|c| PathBuf::from(format!("/sys/fs/cgroup/{c}/{rel}")))
                .collect(),
        })
    }
    pub fn create(
        &self,
        _r: Option<&oci_spec::runtime::LinuxResources>,
        _d: Option<&[oci_spec::runtime::LinuxDevice]>,
    ) -> Result<(), CgroupError> {
        for d in &self.dirs {
            std::fs::create_dir_all(d).map_err(|e| CgroupError(e.to_string()))?;
        }
        Ok(())
    }
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        None
    }
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        for d in &self.dirs {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())
                .map_err(|e| CgroupError(e.to_string()))?;
        }
        Ok(())
    }
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(std::fs::read_to_string(self.dirs[0].join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect())
    }
    pub fn remove(&self) -> Result<(), CgroupError> {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
        Ok(())
    }
}
