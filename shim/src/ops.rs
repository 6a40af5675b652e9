//! The task operations beyond the lifecycle: pause, resume, update, stats
//! and checkpoint. Each is one berth request, run outside the service lock;
//! stats only read the cgroup, so the library answers them in this thread.

use berth::api::{CheckpointOptions as BerthCheckpoint, CriuOptions, LinuxResources, Request};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::CheckpointOptions;

use crate::berth::Io;
use crate::container::Handle;
use crate::error::{Error, Result};
use crate::reaper::Reaper;

const RESOURCES_TYPE: &str = "LinuxResources";
const CHECKPOINT_TYPE: &str = "containerd.runc.v1.CheckpointOptions";

/// The last path element of a type URL; containerd's typeurl registry
/// spells the OCI resources as `types.containerd.io/opencontainers/runtime-spec/1/LinuxResources`.
fn type_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

impl Handle {
    fn simple(&self, reaper: &Reaper, req: Request) -> Result<()> {
        self.berth.request(Some(reaper), req, Io::null()).map(drop)
    }

    pub fn pause(&self, reaper: &Reaper) -> Result<()> {
        let id = self.id.clone();
        self.simple(reaper, Request::Pause { id })
    }

    pub fn resume(&self, reaper: &Reaper) -> Result<()> {
        let id = self.id.clone();
        self.simple(reaper, Request::Resume { id })
    }

    /// containerd marshals the OCI `LinuxResources` as JSON inside the Any
    /// (it is not a protobuf type).
    pub fn update(&self, reaper: &Reaper, resources: Option<&Any>) -> Result<()> {
        let resources = update_resources(resources)?;
        let id = self.id.clone();
        self.simple(reaper, Request::Update { id, resources })
    }

    /// The container's cgroup statistics, as the host layout's metrics.
    pub fn stats(&self) -> Result<Any> {
        let stats =
            (self.berth.runtime().stats(&self.id)).map_err(Error::berth("stats", &self.id))?;
        crate::metrics::to_any(&stats, crate::metrics::host_is_v2())
    }

    /// Checkpoint into `path` with runc's checkpoint options. Options berth
    /// has no counterpart for are refused by name.
    pub fn checkpoint(&self, reaper: &Reaper, path: &str, options: Option<&Any>) -> Result<()> {
        let id = self.id.clone();
        let options = checkpoint_options(path, options)?;
        self.simple(reaper, Request::Checkpoint { id, options })
    }
}

/// UpdateTaskRequest.resources as the OCI type.
pub(crate) fn update_resources(resources: Option<&Any>) -> Result<Box<LinuxResources>> {
    let any = resources.ok_or_else(|| Error::invalid("update resources", "missing"))?;
    if type_name(&any.type_url) != RESOURCES_TYPE {
        return Err(Error::invalid(
            "update resources",
            format!("unsupported type {:?}", any.type_url),
        ));
    }
    serde_json::from_slice(&any.value)
        .map_err(|e| Error::invalid("update resources", e.to_string()))
}

pub(crate) fn checkpoint_options(path: &str, options: Option<&Any>) -> Result<BerthCheckpoint> {
    let o = match options.filter(|a| !a.type_url.is_empty()) {
        None => CheckpointOptions::default(),
        Some(a) if type_name(&a.type_url) == CHECKPOINT_TYPE => {
            CheckpointOptions::parse_from_bytes(&a.value).map_err(|source| Error::Proto {
                what: "decode containerd.runc.v1.CheckpointOptions",
                source,
            })?
        }
        Some(a) => {
            return Err(Error::invalid(
                "checkpoint options",
                format!("unsupported type {:?}", a.type_url),
            ))
        }
    };
    if !o.empty_namespaces.is_empty() {
        return Err(Error::invalid(
            "checkpoint option EmptyNamespaces",
            "not supported by berth",
        ));
    }
    let image = if path.is_empty() { &o.image_path } else { path };
    if image.is_empty() {
        return Err(Error::invalid("checkpoint path", "missing"));
    }
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Ok(BerthCheckpoint {
        criu: CriuOptions {
            image_path: image.into(),
            work_path: some(&o.work_path).map(Into::into),
            tcp_established: o.open_tcp,
            ext_unix_sk: o.external_unix_sockets,
            shell_job: o.terminal,
            file_locks: o.file_locks,
            manage_cgroups_mode: some(&o.cgroups_mode),
            program: None,
        },
        // As runc's shim: the task keeps running unless asked to exit.
        leave_running: !o.exit,
        ..BerthCheckpoint::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(url: &str, m: &impl Message) -> Any {
        Any {
            type_url: url.into(),
            value: m.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn checkpoint_defaults_leave_running() {
        let o = checkpoint_options("/img", None).unwrap();
        assert_eq!(o.criu.image_path, std::path::Path::new("/img"));
        assert!(o.leave_running && !o.criu.tcp_established);
    }

    #[test]
    fn checkpoint_options_mapped() {
        let o = CheckpointOptions {
            exit: true,
            open_tcp: true,
            file_locks: true,
            work_path: "/w".into(),
            cgroups_mode: "soft".into(),
            ..Default::default()
        };
        let c = checkpoint_options("/img", Some(&any(CHECKPOINT_TYPE, &o))).unwrap();
        assert!(!c.leave_running);
        let k = &c.criu;
        assert_eq!(k.work_path.as_deref(), Some(std::path::Path::new("/w")));
        assert!(k.tcp_established && k.file_locks && !k.shell_job && !k.ext_unix_sk);
        assert_eq!(k.manage_cgroups_mode.as_deref(), Some("soft"));
    }

    #[test]
    fn checkpoint_bad_input_named() {
        let o = CheckpointOptions {
            empty_namespaces: vec!["network".into()],
            ..Default::default()
        };
        let e = checkpoint_options("/i", Some(&any(CHECKPOINT_TYPE, &o))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid checkpoint option EmptyNamespaces: not supported by berth"
        );
        let e = checkpoint_options("", None).unwrap_err();
        assert_eq!(e.to_string(), "invalid checkpoint path: missing");
        let e = checkpoint_options("/i", Some(&any("x.Other", &o))).unwrap_err();
        assert!(e.to_string().contains("unsupported type"), "{e}");
    }
}
