//! The benchmark bundle: one busybox rootfs shared by every container (its
//! path in config.json is absolute) and one small bundle directory per
//! runtime and slot, whose config.json is rewritten for each container so
//! each gets its own cgroupsPath. Writing it happens outside the timed
//! window.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::error::{Error, Result};

pub struct Bundles {
    dir: PathBuf,
    base: Value,
    cgroup_parent: String,
    /// What the base config was generated with (recorded in the results).
    pub spec_from: String,
    /// Every change made to that generated config, for the results.
    pub patches: Vec<String>,
}

/// Builds a minimal rootfs from a static busybox: the binary plus one
/// symlink per applet, and the usual empty mount points.
pub fn build_rootfs(busybox: &Path, dest: &Path) -> Result<()> {
    for d in ["", "bin", "proc", "sys", "dev", "etc", "tmp", "root"] {
        let p = dest.join(d);
        fs::create_dir_all(&p).map_err(|e| Error::io("create", &p, e))?;
    }
    let bb = dest.join("bin/busybox");
    fs::copy(busybox, &bb).map_err(|e| Error::io("copy busybox to", &bb, e))?;
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("chmod", &bb, e))?;
    let out = Command::new(busybox)
        .arg("--list")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::io("run", busybox, e))?;
    if !out.status.success() {
        return Err(Error::Usage(format!(
            "{} --list failed: is it a busybox binary?",
            busybox.display()
        )));
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = dest.join("bin").join(applet);
        symlink("busybox", &link).map_err(|e| Error::io("symlink", &link, e))?;
    }
    for applet in ["true", "sleep"] {
        if !dest.join("bin").join(applet).exists() {
            return Err(Error::Usage(format!(
                "{} lacks the `{applet}` applet",
                busybox.display()
            )));
        }
    }
    let passwd = dest.join("etc/passwd");
    fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\n")
        .map_err(|e| Error::io("write", &passwd, e))?;
    Ok(())
}

impl Bundles {
    /// Generates the base config with `<spec_runtime> spec` (so it is exactly
    /// what that runtime hands its users) and adapts it for the bench.
    pub fn new(
        dir: PathBuf,
        rootfs: &Path,
        spec_runtime: (&str, &Path),
        cgroup_parent: &str,
    ) -> Result<Bundles> {
        let gen = dir.join("spec");
        fs::create_dir_all(&gen).map_err(|e| Error::io("create", &gen, e))?;
        let out = Command::new(spec_runtime.1)
            .arg("spec")
            .current_dir(&gen)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("run", spec_runtime.1, e))?;
        if !out.status.success() {
            return Err(Error::Command {
                runtime: spec_runtime.0.into(),
                cmd: "spec".into(),
                status: format!("{}", out.status),
                stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
            });
        }
        let path = gen.join("config.json");
        let text = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let mut base: Value =
            serde_json::from_slice(&text).map_err(|source| Error::Json { path, source })?;
        let mut patches = vec![
            "process.terminal=false".to_string(),
            "process.args per container".into(),
            "root.path=<absolute shared rootfs>".into(),
            format!("linux.cgroupsPath=/{cgroup_parent}/<container id>"),
        ];
        base["process"]["terminal"] = json!(false);
        base["root"]["path"] = json!(rootfs);
        // runc 1.1.5's template asks for ambient capabilities that are not
        // inheritable; the kernel refuses to raise those. runc and crun skip
        // the failure silently, berth reports it, so the template would not
        // run under berth at all. Dropping the list changes nothing for the
        // others (they never got those ambient caps either).
        if let Some(caps) = base["process"]["capabilities"].as_object_mut() {
            let inheritable = caps.get("inheritable").cloned().unwrap_or(json!([]));
            let inheritable = inheritable.as_array().map(Vec::as_slice).unwrap_or(&[]);
            let not_inheritable = |a: &Value| {
                a.as_array()
                    .is_some_and(|a| a.iter().any(|c| !inheritable.contains(c)))
            };
            if caps.get("ambient").is_some_and(not_inheritable) {
                caps.remove("ambient");
                patches.push("process.capabilities.ambient removed (not inheritable)".into());
            }
        }
        Ok(Bundles {
            dir,
            base,
            cgroup_parent: cgroup_parent.into(),
            spec_from: format!("{} spec", spec_runtime.0),
            patches,
        })
    }

    /// Writes the bundle for container `id` of `runtime` in `slot` and
    /// returns the bundle directory.
    pub fn prepare(&self, runtime: &str, slot: &str, id: &str, args: &[&str]) -> Result<PathBuf> {
        let dir = self.dir.join(format!("{runtime}.{slot}"));
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        }
        let mut cfg = self.base.clone();
        cfg["process"]["args"] = json!(args);
        cfg["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", self.cgroup_parent));
        let path = dir.join("config.json");
        let text = serde_json::to_vec_pretty(&cfg).expect("a JSON value always serializes");
        fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        Ok(dir)
    }
}
