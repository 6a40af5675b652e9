//! Shared helpers for the rootfs tests: a busybox rootfs in a temp dir, a
//! forked child in its own mount namespace to run the setup in, and
//! mountinfo parsing for checks. The tests need root.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

/// Serialises fork() with writes to files that children will exec.
static FORK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub struct Scratch {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = nix::unistd::mkdtemp(format!("/tmp/berth-{name}-XXXXXX").as_str()).unwrap();
        let bundle = dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        {
            // A child forked by a parallel test would inherit the write fd
            // and make exec fail with ETXTBSY.
            let _g = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        }
        for tool in ["sh", "cat", "ls", "true"] {
            symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
        }
        Scratch {
            dir,
            bundle,
            rootfs,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Never delete through a mount that leaked into this namespace.
        if host_mounts_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Mount points of *this* (the test's, i.e. host) namespace under `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<String> {
    mountinfo_of("/proc/self/mountinfo")
        .into_iter()
        .filter(|m| Path::new(&m.mountpoint).starts_with(dir))
        .map(|m| m.mountpoint)
        .collect()
}

/// Run `f` in a forked child that first unshares `flags` (always including a
/// mount namespace, so nothing can reach the host's). Returns the child's
/// error message, or Ok. A panic in the child is reported as an error.
pub fn in_child<F: FnOnce() -> Result<(), String>>(flags: CloneFlags, f: F) -> Result<(), String> {
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let guard = FORK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the child only runs this test's code and leaves with _exit; it
    // never returns into the test harness.
    let forked = unsafe { fork() }.unwrap();
    drop(guard);
    match forked {
        ForkResult::Child => {
            drop(rd);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                nix::sched::unshare(flags | CloneFlags::CLONE_NEWNS)
                    .map_err(|e| format!("unshare: {e}"))?;
                f()
            }))
            .unwrap_or_else(|p| {
                Err(p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()))
            });
            let mut w = fs::File::from(wr);
            let code = match res {
                Ok(()) => 0,
                Err(e) => {
                    let _ = w.write_all(e.as_bytes());
                    1
                }
            };
            // SAFETY: leave without running the parent's destructors or atexit.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            fs::File::from(rd).read_to_string(&mut msg).unwrap();
            match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, 0) => Ok(()),
                WaitStatus::Exited(_, _) => Err(msg),
                other => Err(format!("child ended with {other:?}: {msg}")),
            }
        }
    }
}

pub fn mnt(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(dest.into());
    m.set_typ(Some(typ.into()));
    m.set_source(Some(source.into()));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

/// oci-spec's default (runc-like) spec, without a cgroup namespace.
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    let linux = spec.linux_mut().as_mut().unwrap();
    let ns = linux.namespaces_mut().as_mut().unwrap();
    ns.retain(|n| n.typ() != LinuxNamespaceType::Cgroup);
    spec
}

pub fn add_mounts(spec: &mut Spec, extra: Vec<Mount>) {
    spec.mounts_mut().get_or_insert_with(Vec::new).extend(extra);
}

#[derive(Debug, Clone)]
pub struct MountLine {
    pub mountpoint: String,
    pub options: Vec<String>,
    pub optional: String,
    pub fstype: String,
    pub super_options: String,
}

pub fn mountinfo() -> Vec<MountLine> {
    mountinfo_of("/proc/self/mountinfo")
}

fn mountinfo_of(path: &str) -> Vec<MountLine> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountLine {
                mountpoint: f.get(4)?.replace("\\040", " "),
                options: f.get(5)?.split(',').map(String::from).collect(),
                optional: f[6..].join(" "),
                fstype: r.first()?.to_string(),
                super_options: r.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// The topmost mount at `mountpoint`.
pub fn mount_at(mountpoint: &str) -> Result<MountLine, String> {
    mountinfo()
        .into_iter()
        .rev()
        .find(|m| m.mountpoint == mountpoint)
        .ok_or_else(|| format!("no mount at {mountpoint}"))
}

pub fn check(cond: bool, what: impl Into<String>) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.into())
    }
}

pub fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}
