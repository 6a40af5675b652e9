//! The scenario table and `Case`, the per-scenario bundle, containers and
//! assertions, which cleans up after itself.

mod bad_config;
mod cgroups;
mod config;
mod exec;
mod fdpass;
mod hooks;
mod lifecycle;
mod namespaces;
mod oci_extra;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::Value;

use conformance::cgroup::{self, Layout};
use conformance::mountinfo;
use conformance::tap::{self, Counts, Tap};

use crate::bundle::{self, CHECK_DIR};
use crate::features::Host;
use crate::runtime::{Out, Runtime};

pub struct Scenario {
    pub name: &'static str,
    /// What it needs from the host or runtime; see features.rs.
    pub features: &'static [&'static str],
    pub run: fn(&mut Case),
}

pub fn all() -> Vec<Scenario> {
    let mut v = Vec::new();
    v.extend(lifecycle::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(bad_config::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(hooks::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(config::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(namespaces::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(cgroups::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(exec::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(fdpass::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v.extend(oci_extra::SCENARIOS.iter().map(|s| Scenario { ..*s }));
    v
}

/// Shared by every case of a run.
pub struct Env {
    pub rt: Runtime,
    pub work: PathBuf,
    pub base_rootfs: PathBuf,
    /// First component of every cgroupsPath this run uses.
    pub prefix: String,
    /// The runtime runs with --systemd-cgroup (see `cgroups_path`).
    pub systemd: bool,
    pub host: Host,
}

impl Env {
    /// The cgroupsPath of case `name`: `/<prefix>/<name>`, or with systemd
    /// `system.slice:<prefix>:<name>`, the unit `<prefix>-<name>.scope`.
    pub fn cgroups_path(&self, name: &str) -> String {
        if self.systemd {
            format!("system.slice:{}:{name}", self.prefix)
        } else {
            format!("/{}/{name}", self.prefix)
        }
    }

    /// Where a cgroupsPath puts the container, relative to the cgroup root
    /// (absolute) or to the runtime's cgroup: a systemd `slice:prefix:name`
    /// is `/<slice>/<prefix>-<name>.scope` (slices here are not nested).
    pub fn cgroup_dir(&self, cgroups_path: &str) -> String {
        match cgroups_path.split(':').collect::<Vec<_>>()[..] {
            [slice, prefix, name] if self.systemd => format!("/{slice}/{prefix}-{name}.scope"),
            _ => cgroups_path.to_string(),
        }
    }
}

pub struct Case<'a> {
    pub env: &'a Env,
    pub name: &'static str,
    pub dir: PathBuf,
    pub cfg: Value,
    pub t: Tap<Vec<u8>>,
    /// Assertions made by berth-check inside containers.
    pub inner: Counts,
    ids: Vec<String>,
    helpers: Vec<Child>,
}

/// How long a container may take to reach a status.
pub const SETTLE: Duration = Duration::from_secs(10);

impl<'a> Case<'a> {
    pub fn new(env: &'a Env, name: &'static str) -> std::io::Result<Case<'a>> {
        let dir = env.work.join(name);
        bundle::link_tree(&env.base_rootfs, &dir.join("rootfs"))?;
        let cfg = bundle::base_config(&env.cgroups_path(name));
        let t = Tap::new(Vec::new());
        Ok(Case {
            env,
            name,
            dir,
            cfg,
            t,
            inner: Counts::default(),
            ids: Vec::new(),
            helpers: Vec::new(),
        })
    }

    pub fn rt(&self) -> &Runtime {
        &self.env.rt
    }

    /// A fresh container id, remembered for cleanup.
    pub fn new_id(&mut self) -> String {
        let id = format!(
            "conf-{}-{}-{}",
            self.name.replace('_', "-"),
            std::process::id(),
            self.ids.len()
        );
        self.ids.push(id.clone());
        id
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Writes config.json into the bundle, and it plus the host facts into
    /// the rootfs for the checker.
    pub fn write_config(&mut self) {
        let text = serde_json::to_string_pretty(&self.cfg).expect("a Value always serialises");
        let host = bundle::host_facts(&self.cfg, &self.dir);
        let r = std::fs::write(self.dir.join("config.json"), &text)
            .and_then(|_| std::fs::write(self.rootfs().join(CHECK_DIR).join("config.json"), &text))
            .and_then(|_| {
                std::fs::write(
                    self.rootfs().join(CHECK_DIR).join("host.json"),
                    host.to_string(),
                )
            });
        if let Err(e) = r {
            self.t.error("write config.json", e);
        }
    }

    pub fn out_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.out"))
    }

    /// The container's stdout so far.
    pub fn output(&self, id: &str) -> String {
        std::fs::read_to_string(self.out_path(id)).unwrap_or_default()
    }

    /// `create` with the current config; `extra` goes before the id.
    pub fn create(&mut self, id: &str, extra: &[&str]) -> Out {
        self.write_config();
        let dir = self.dir.to_string_lossy().into_owned();
        let mut args = vec!["create", "--bundle", dir.as_str()];
        args.extend_from_slice(extra);
        args.push(id);
        let (o, e) = (self.out_path(id), self.dir.join(format!("{id}.err")));
        self.env.rt.call_io(&args, Some((&o, &e)))
    }

    /// `create` asserted to succeed.
    pub fn create_ok(&mut self, desc: &str, id: &str, extra: &[&str]) -> bool {
        let out = self.create(id, extra);
        self.ok(desc, &out)
    }

    pub fn call(&self, args: &[&str]) -> Out {
        self.env.rt.call(args)
    }

    /// Asserts that a runtime call succeeded.
    pub fn ok(&mut self, desc: &str, out: &Out) -> bool {
        self.t.ok(out.ok(), desc, out.why())
    }

    /// Asserts that a runtime call failed (a timeout is not an error report).
    pub fn fails(&mut self, desc: &str, out: &Out) -> bool {
        let failed = matches!(out.code, Some(c) if c != 0);
        self.t.ok(
            failed,
            desc,
            if out.code.is_none() {
                "timed out"
            } else {
                "it succeeded"
            },
        )
    }

    pub fn status_is(&mut self, desc: &str, id: &str, want: &str) -> bool {
        let got = self.rt().status(id);
        self.t.eq(desc, Some(want), got.as_deref())
    }

    pub fn wait_status(&mut self, desc: &str, id: &str, want: &str) -> bool {
        let r = self.rt().wait_status(id, want, SETTLE);
        self.t.ok(r.is_ok(), desc, r.err().unwrap_or_default())
    }

    pub fn pid(&self, id: &str) -> Option<i64> {
        self.rt().state(id).ok()?.get("pid")?.as_i64()
    }

    /// Starts a host helper process (e.g. an `unshare` holding namespaces).
    pub fn helper(&mut self, args: &[&str]) -> Option<u32> {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(args[0])
            .args(&args[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .spawn();
        match child {
            Ok(c) => {
                let pid = c.id();
                self.helpers.push(c);
                Some(pid)
            }
            Err(e) => {
                self.t.error(format!("start helper {}", args[0]), e);
                None
            }
        }
    }

    /// Checks the container's cgroup files from the host (after create,
    /// before start), on the same rules the checker applies inside.
    pub fn host_cgroup_checks(&mut self, id: &str) {
        let Some(res) = conformance::json::at(&self.cfg, "linux.resources").cloned() else {
            return;
        };
        let Some(pid) = self.pid(id) else {
            return self.t.error("host: cgroup checks", "no pid in state");
        };
        match Layout::of(&pid.to_string()) {
            Ok(layout) => {
                let checks = cgroup::checks(&res, &layout);
                cgroup::evaluate(&mut self.t, &layout, &checks, "host: ");
            }
            Err(e) => self.t.error("host: read the container's cgroups", e),
        }
    }

    /// The container's cgroup, as the host sees it, is linux.cgroupsPath
    /// (absolute), or ends with it (relative to the runtime's own cgroup).
    pub fn cgroup_path_check(&mut self, id: &str) {
        let Some(want) = conformance::json::str_at(&self.cfg, "linux.cgroupsPath")
            .map(|p| self.env.cgroup_dir(p))
        else {
            return;
        };
        let Some(pid) = self.pid(id) else { return };
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let pure_v2 = text.lines().all(|l| l.starts_with("0::"));
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let relevant = if ctrls.is_empty() {
                pure_v2
            } else {
                ["memory", "pids", "cpu", "devices"]
                    .iter()
                    .any(|c| ctrls.split(',').any(|x| x == *c))
            };
            if !relevant {
                continue;
            }
            let ok = if want.starts_with('/') {
                path == want
            } else {
                path.ends_with(&format!("/{want}"))
            };
            let name = if ctrls.is_empty() { "unified" } else { ctrls };
            self.t.ok(
                ok,
                format!("host: {name} cgroup follows cgroupsPath {want}"),
                format!("process is in {path}"),
            );
        }
    }

    /// The full checker run: create, host-side cgroup checks, start, wait
    /// for the checker to finish, count its TAP, delete.
    pub fn run_checker(&mut self) {
        let id = self.new_id();
        let out = self.create(&id, &[]);
        if !self.ok("create", &out) {
            return;
        }
        self.cgroup_path_check(&id);
        self.host_cgroup_checks(&id);
        let out = self.call(&["start", &id]);
        if self.ok("start", &out) {
            self.wait_status("checker finished (stopped)", &id, "stopped");
        }
        self.absorb(&id);
        let out = self.call(&["delete", &id]);
        self.ok("delete", &out);
    }

    /// Counts a checker's TAP; a missing plan means it died halfway.
    pub fn absorb(&mut self, id: &str) {
        let c = tap::parse(&self.output(id));
        let planned = c.plan.is_some_and(|p| p == c.total() && p > 0);
        let err = std::fs::read_to_string(self.dir.join(format!("{id}.err"))).unwrap_or_default();
        let why = format!(
            "plan {:?} for {} lines; stderr {:?}",
            c.plan,
            c.total(),
            err.lines().last().unwrap_or("")
        );
        self.t.ok(planned, "checker ran to completion", why);
        self.inner.passed += c.passed;
        self.inner.failed += c.failed;
        self.inner.skipped += c.skipped;
        self.inner.failures.extend(c.failures);
    }

    /// Deletes containers, stops helpers, unmounts leftovers and removes the
    /// bundle and its cgroups. Returns what had to be cleaned.
    pub fn cleanup(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        for id in std::mem::take(&mut self.ids) {
            if self.env.rt.state(&id).is_ok() {
                left.push(format!("container {id}"));
                self.env.rt.force_delete(&id);
            }
        }
        for mut h in self.helpers.drain(..) {
            // SAFETY: kill(2) on the helper's own process group.
            unsafe { libc::kill(-(h.id() as i32), libc::SIGKILL) };
            let _ = h.wait();
        }
        left.extend(unmount_under(&self.dir));
        let cg = self.env.cgroups_path(self.name);
        left.extend(remove_cgroups(
            self.env.cgroup_dir(&cg).trim_start_matches('/'),
        ));
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            left.push(format!("bundle not removed: {e}"));
        }
        left
    }
}

/// Lazily unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = mountinfo::read("self")
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.point)
        .filter(|p| p == &d || p.starts_with(&format!("{d}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in &points {
        if let Ok(c) = std::ffi::CString::new(p.as_str()) {
            // SAFETY: c is NUL-terminated.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    points.into_iter().map(|p| format!("mount {p}")).collect()
}

/// rmdir's `rel` (relative to each hierarchy's root, and to this process's
/// own cgroup for relative cgroupsPaths) in every cgroup mount, deepest first.
pub fn remove_cgroups(rel: &str) -> Vec<String> {
    let mut left = Vec::new();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for m in mountinfo::read("self").unwrap_or_default() {
        if m.fstype != "cgroup" && m.fstype != "cgroup2" {
            continue;
        }
        let mut bases = vec![PathBuf::from(&m.point)];
        if let Some(path) = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, p) = (f.next()?, f.next()?, f.next()?);
            let hit = if m.fstype == "cgroup2" {
                ctrls.is_empty()
            } else {
                ctrls.split(',').all(|c| m.has_super(c)) && !ctrls.is_empty()
            };
            hit.then(|| p.to_string())
        }) {
            bases.push(Path::new(&m.point).join(path.trim_start_matches('/')));
        }
        for b in bases {
            let d = b.join(rel);
            if d.is_dir() {
                left.push(format!("cgroup {}", d.display()));
                rmdir_tree(&d);
            }
        }
    }
    left
}

fn rmdir_tree(d: &Path) {
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(d);
}
