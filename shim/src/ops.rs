//! The task operations beyond the lifecycle: pause, resume, update, stats
//! and checkpoint. Each is one berth command, run outside the service lock.

use std::ffi::{OsStr, OsString};

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
    fn simple(&self, reaper: &Reaper, cmd: &str) -> Result<()> {
        self.berth.run(
            Some(reaper),
            &[OsStr::new(cmd), OsStr::new(&self.id)],
            Io::null(),
            &self.id,
        )
    }

    pub fn pause(&self, reaper: &Reaper) -> Result<()> {
        self.simple(reaper, "pause")
    }

    pub fn resume(&self, reaper: &Reaper) -> Result<()> {
        self.simple(reaper, "resume")
    }

    /// containerd marshals the OCI `LinuxResources` as JSON inside the Any
    /// (it is not a protobuf type), which is what `berth update -r -` reads.
    pub fn update(&self, reaper: &Reaper, resources: Option<&Any>) -> Result<()> {
        let any = resources.ok_or_else(|| Error::invalid("update resources", "missing"))?;
        if type_name(&any.type_url) != RESOURCES_TYPE {
            return Err(Error::invalid(
                "update resources",
                format!("unsupported type {:?}", any.type_url),
            ));
        }
        let args = [
            OsStr::new("update"),
            OsStr::new("-r"),
            OsStr::new("-"),
            OsStr::new(&self.id),
        ];
        self.berth
            .output(Some(reaper), &args, Some(&any.value), &self.id)
            .map(drop)
    }

    /// One `berth events --stats` line, as the host layout's metrics.
    pub fn stats(&self, reaper: &Reaper) -> Result<Any> {
        let args = [
            OsStr::new("events"),
            OsStr::new("--stats"),
            OsStr::new(&self.id),
        ];
        let out = self.berth.output(Some(reaper), &args, None, &self.id)?;
        crate::metrics::to_any(&out, crate::metrics::host_is_v2())
    }

    /// `berth checkpoint` into `path` with runc's checkpoint options. Options
    /// berth has no flag for are refused by name.
    pub fn checkpoint(&self, reaper: &Reaper, path: &str, options: Option<&Any>) -> Result<()> {
        let args = checkpoint_args(path, options)?;
        let mut argv: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        argv.push(OsStr::new(&self.id));
        self.berth.run(Some(reaper), &argv, Io::null(), &self.id)
    }
}

fn checkpoint_args(path: &str, options: Option<&Any>) -> Result<Vec<OsString>> {
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
    let mut a: Vec<OsString> = vec!["checkpoint".into(), "--image-path".into(), image.into()];
    if !o.work_path.is_empty() {
        a.extend(["--work-path".into(), o.work_path.clone().into()]);
    }
    // As runc's shim: the task keeps running unless asked to exit.
    let flags = [
        (!o.exit, "--leave-running"),
        (o.open_tcp, "--tcp-established"),
        (o.external_unix_sockets, "--ext-unix-sk"),
        (o.terminal, "--shell-job"),
        (o.file_locks, "--file-locks"),
    ];
    a.extend(flags.iter().filter(|(on, _)| *on).map(|(_, f)| f.into()));
    if !o.cgroups_mode.is_empty() {
        a.extend([
            "--manage-cgroups-mode".into(),
            o.cgroups_mode.clone().into(),
        ]);
    }
    Ok(a)
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
        let a = checkpoint_args("/img", None).unwrap();
        assert_eq!(a, ["checkpoint", "--image-path", "/img", "--leave-running"]);
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
        let a = checkpoint_args("/img", Some(&any(CHECKPOINT_TYPE, &o))).unwrap();
        assert_eq!(
            a,
            [
                "checkpoint",
                "--image-path",
                "/img",
                "--work-path",
                "/w",
                "--tcp-established",
                "--file-locks",
                "--manage-cgroups-mode",
                "soft"
            ]
        );
    }

    #[test]
    fn checkpoint_bad_input_named() {
        let o = CheckpointOptions {
            empty_namespaces: vec!["network".into()],
            ..Default::default()
        };
        let e = checkpoint_args("/i", Some(&any(CHECKPOINT_TYPE, &o))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid checkpoint option EmptyNamespaces: not supported by berth"
        );
        let e = checkpoint_args("", None).unwrap_err();
        assert_eq!(e.to_string(), "invalid checkpoint path: missing");
        let e = checkpoint_args("/i", Some(&any("x.Other", &o))).unwrap_err();
        assert!(e.to_string().contains("unsupported type"), "{e}");
    }
}
