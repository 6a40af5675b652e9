//! Operations on a live container's cgroup: `pause`, `resume`, `update`
//! and the pid list, with runc's rules for which status each accepts.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};
use crate::state::{Dir, Status};

/// Freeze every process of a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Running {
        return Err(Error::BadStatus {
            op: "container not running",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    st.need_cgroup("pause")?;
    Ok(st.cgroup.set_frozen(true)?)
}

/// Thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Paused {
        return Err(Error::BadStatus {
            op: "container not paused",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    st.need_cgroup("resume")?;
    Ok(st.cgroup.set_frozen(false)?)
}

/// The host pids of a container's processes (its cgroup's members).
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    drop(dir);
    st.need_cgroup("ps")?;
    Ok(st.cgroup.pids()?)
}

/// Set the fields `new` sets onto `old` (serde_json objects merged key by
/// key, one level into each resource section), and return what to apply:
/// every section `new` touches, whole, so that conversions needing two
/// fields (v2 swap = swap - limit) see both.
fn merge(old: &LinuxResources, new: &LinuxResources) -> Result<(LinuxResources, LinuxResources)> {
    let to_value = |r: &LinuxResources| {
        serde_json::to_value(r).map_err(|e| Error::field("linux.resources", e.to_string()))
    };
    let (mut merged, new) = (to_value(old)?, to_value(new)?);
    let mut touched = serde_json::Map::new();
    let (Some(m), Some(n)) = (merged.as_object_mut(), new.as_object()) else {
        return Err(Error::field("linux.resources", "not an object"));
    };
    for (k, v) in n {
        if v.is_null() {
            continue;
        }
        let slot = m.entry(k.clone()).or_insert(serde_json::Value::Null);
        match (slot.as_object_mut(), v.as_object()) {
            (Some(dst), Some(src)) => {
                for (f, x) in src.iter().filter(|(_, x)| !x.is_null()) {
                    dst.insert(f.clone(), x.clone());
                }
            }
            _ => *slot = v.clone(),
        }
        touched.insert(k.clone(), slot.clone());
    }
    let from = |v: serde_json::Value| {
        serde_json::from_value(v).map_err(|e| Error::field("linux.resources", e.to_string()))
    };
    Ok((from(merged)?, from(serde_json::Value::Object(touched))?))
}

/// Apply new limits to a created, running or paused container, and record
/// them in the stored config so that later reads agree.
pub fn update(root: &Path, id: &str, mut new: LinuxResources) -> Result<()> {
    // As runc: an unlimited memory limit without a swap value lifts the
    // swap limit too, else the old memory+swap cap would still hold.
    if let Some(mut m) = *new.memory() {
        if m.limit() == Some(-1) && m.swap().is_none() {
            m.set_swap(Some(-1));
            new.set_memory(Some(m));
        }
    }
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status == Status::Stopped {
        return Err(Error::BadStatus {
            op: "cannot update",
            id: id.into(),
            status: status.as_str().into(),
        });
    }
    let mut spec = dir.load_config()?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let old = linux.resources().clone().unwrap_or_default();
    // Device rules are fixed at create, as in runc (which ignores them
    // here). containerd's CRI sends the container's whole resources back,
    // rules included, so unchanged rules are fine; changed ones an error.
    let same = |d: &Option<Vec<_>>| d.as_deref().unwrap_or_default().to_vec();
    if new.devices().is_some() && same(new.devices()) != same(old.devices()) {
        return Err(Error::field(
            "linux.resources.devices",
            "device rules cannot be updated",
        ));
    }
    new.set_devices(None);
    let (merged, apply) = merge(&old, &new)?;
    st.need_cgroup("update")?;
    st.cgroup.update(&apply)?;
    linux.set_resources(Some(merged));
    spec.set_linux(Some(linux));
    let raw = serde_json::to_vec(&spec).map_err(Error::encode("config.json"))?;
    dir.save_config(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_old_fields_and_applies_whole_sections() {
        let old: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}}"#,
        )
        .unwrap();
        let new: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 150}}"#).unwrap();
        let (merged, apply) = merge(&old, &new).unwrap();
        let m = merged.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(150), Some(200)));
        assert_eq!(merged.pids().as_ref().unwrap().limit(), 5);
        assert!(apply.pids().is_none());
        assert_eq!(apply.memory().as_ref().unwrap().swap(), Some(200));
    }
}
