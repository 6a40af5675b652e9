//! Where a process's cgroup files are and what `linux.resources` says they
//! must contain. The checker evaluates this from inside the container (when a
//! cgroup mount gives access) and the driver from the host, on the same rules.

mod v1;
mod v2;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::mountinfo::{self, Mount};
use crate::tap::Tap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A process's cgroup directories as seen through one mount table.
#[derive(Debug, Default)]
pub struct Layout {
    /// v1: (controllers of the hierarchy, directory); one entry per mounted hierarchy.
    v1: Vec<(Vec<String>, PathBuf)>,
    /// The unified (v2) directory, when a cgroup2 mount covers the process's path.
    v2: Option<PathBuf>,
}

/// Maps the process's cgroup path onto a mount: the mount's root must be a
/// prefix of the path (a bind of a sub-cgroup only shows what is under it).
fn map(mount: &Mount, path: &str) -> Option<PathBuf> {
    let rel = if mount.root == "/" {
        path
    } else {
        path.strip_prefix(mount.root.as_str())?
    };
    if !(rel.is_empty() || rel.starts_with('/')) {
        return None;
    }
    Some(Path::new(&mount.point).join(rel.trim_start_matches('/')))
}

impl Layout {
    /// `proc_cgroup` is /proc/<pid>/cgroup of the process, `mounts` the
    /// observer's mount table.
    pub fn new(proc_cgroup: &str, mounts: &[Mount]) -> Layout {
        let mut l = Layout::default();
        for line in proc_cgroup.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if ctrls.is_empty() {
                l.v2 = mounts
                    .iter()
                    .rev()
                    .filter(|m| m.fstype == "cgroup2")
                    .find_map(|m| map(m, path));
                continue;
            }
            let names: Vec<String> = ctrls.split(',').map(str::to_string).collect();
            let dir = mounts
                .iter()
                .rev()
                .filter(|m| m.fstype == "cgroup" && names.iter().all(|n| m.has_super(n)))
                .find_map(|m| map(m, path));
            if let Some(d) = dir {
                l.v1.push((names, d));
            }
        }
        l
    }

    /// The layout of `pid` ("self" or a number) seen from this process.
    pub fn of(pid: &str) -> std::io::Result<Layout> {
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
        Ok(Layout::new(&cg, &mountinfo::read("self")?))
    }

    /// Where `controller`'s files are: its v1 hierarchy when it has one, else v2.
    pub fn dir(&self, controller: &str) -> Option<(Version, &Path)> {
        if let Some((_, d)) = self
            .v1
            .iter()
            .find(|(n, _)| n.iter().any(|c| c == controller))
        {
            return Some((Version::V1, d));
        }
        self.v2.as_deref().map(|d| (Version::V2, d))
    }

    pub fn is_empty(&self) -> bool {
        self.v1.is_empty() && self.v2.is_none()
    }
}

/// What a file must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The whole content, trimmed.
    Exact(String),
    /// One of these (runtimes differ in a documented conversion).
    AnyOf(Vec<String>),
    /// A line of the file equals this.
    Line(String),
    /// No line of the file equals this.
    NoLine(String),
    /// Some line holds all of these whitespace-separated words.
    LineHas(Vec<String>),
    /// v1 devices.list has a rule covering `type major:minor access`
    /// (runtimes add default rules that may widen the configured ones).
    DeviceAllowed(String),
    /// A block IO weight: the BFQ file (`file`, "W" on v1, "default W" on
    /// v2) holds `bfq`; without BFQ, `fallback` holds one of `want`.
    Weight {
        bfq: String,
        fallback: &'static str,
        want: Vec<String>,
    },
}

/// The default weight of a weight file: v1 shows "W", v2 "default W" first.
fn default_weight(text: &str) -> &str {
    let first = text.lines().next().unwrap_or_default().trim();
    first.strip_prefix("default ").unwrap_or(first)
}

#[derive(Debug, Clone)]
pub struct FileCheck {
    pub desc: String,
    pub controller: &'static str,
    pub file: String,
    pub want: Want,
}

fn fc(
    desc: impl Into<String>,
    controller: &'static str,
    file: impl Into<String>,
    want: Want,
) -> FileCheck {
    FileCheck {
        desc: desc.into(),
        controller,
        file: file.into(),
        want,
    }
}

/// Every file check that `resources` (config `linux.resources`) implies, in
/// the file names of the version each controller lives on.
pub fn checks(resources: &Value, layout: &Layout) -> Vec<FileCheck> {
    let mut out = Vec::new();
    for ctrl in [
        "memory", "cpu", "cpuset", "pids", "blkio", "hugetlb", "net_cls", "net_prio", "devices",
    ] {
        let v = layout.dir(ctrl).map(|(v, _)| v).unwrap_or(Version::V1);
        match v {
            Version::V1 => v1::checks(ctrl, resources, &mut out),
            Version::V2 => v2::checks(ctrl, resources, &mut out),
        }
    }
    if let Some(u) = resources.get("unified").and_then(Value::as_object) {
        for (k, val) in u {
            let want = Want::Exact(val.as_str().unwrap_or_default().trim().to_string());
            out.push(fc(format!("unified {k}"), "", k.clone(), want));
        }
    }
    out
}

/// Whether devices.list line `have` allows everything rule `want` asks for.
fn covers(have: &str, want: &str) -> bool {
    let split = |s: &str| -> Option<(String, String, String, String)> {
        let mut f = s.split_whitespace();
        let (ty, num, acc) = (f.next()?, f.next()?, f.next()?);
        let (ma, mi) = num.split_once(':')?;
        Some((ty.into(), ma.into(), mi.into(), acc.into()))
    };
    let (Some(h), Some(w)) = (split(have), split(want)) else {
        return false;
    };
    let field = |h: &str, w: &str| h == "*" || h == w;
    (h.0 == "a" || h.0 == w.0)
        && field(&h.1, &w.1)
        && field(&h.2, &w.2)
        && w.3.chars().all(|c| h.3.contains(c))
}

fn judge(want: &Want, text: &str) -> Result<(), String> {
    let t = text.trim();
    let ok = match want {
        Want::Exact(w) => t == w,
        Want::AnyOf(ws) => ws.iter().any(|w| w == t),
        Want::Line(w) => t.lines().any(|l| l.trim() == w),
        Want::NoLine(w) => !t.lines().any(|l| l.trim() == w),
        Want::Weight { bfq, .. } => default_weight(t) == bfq,
        Want::DeviceAllowed(w) => t.lines().any(|l| covers(l, w)),
        Want::LineHas(ws) => t
            .lines()
            .any(|l| ws.iter().all(|w| l.split_whitespace().any(|x| x == w))),
    };
    if ok {
        return Ok(());
    }
    let shown: String = t.chars().take(120).collect();
    Err(format!("want {want:?}, file has {shown:?}"))
}

/// Reads and judges every check; `missing` decides what an absent controller
/// means (a failure from the host, a skip inside a container without access).
pub fn evaluate<W: std::io::Write>(
    tap: &mut Tap<W>,
    layout: &Layout,
    checks: &[FileCheck],
    prefix: &str,
) {
    for c in checks {
        let desc = format!("{prefix}cgroup {} ({})", c.desc, c.file);
        // "unified" keys name their own file, in the v2 hierarchy.
        let dir = if c.controller.is_empty() {
            layout.v2.as_deref()
        } else {
            layout.dir(c.controller).map(|(_, d)| d)
        };
        let Some(dir) = dir else {
            tap.error(
                &desc,
                format!("no cgroup directory for controller {:?}", c.controller),
            );
            continue;
        };
        let mut path = dir.join(&c.file);
        let mut want = c.want.clone();
        if let Want::Weight {
            fallback, want: w, ..
        } = &c.want
        {
            if !path.exists() {
                path = dir.join(fallback);
                want = Want::AnyOf(w.clone());
            }
        }
        match std::fs::read_to_string(&path).map(|t| match want {
            Want::AnyOf(_) if matches!(c.want, Want::Weight { .. }) => {
                default_weight(&t).to_owned()
            }
            _ => t,
        }) {
            Ok(text) => {
                let r = judge(&want, &text);
                tap.ok(r.is_ok(), &desc, r.err().unwrap_or_default());
            }
            Err(e) => tap.error(&desc, format!("{}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests;
