//! Test support: a throwaway bundle with a busybox rootfs, its own state root
//! and its own cgroup path, and checks that nothing of it is left behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{json, Value};

/// The berth binary under test: this build's, or the one `BERTH_TEST_BINARY`
/// names (another build of the same source: CI runs some of these tests
/// against the musl release build).
pub fn berth_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("BERTH_TEST_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").into())
    })
}
static SEQ: AtomicU32 = AtomicU32::new(0);

pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub name: String,
    pub cgroup: String,
    pub config: Value,
}

const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "hostname", "sleep", "id", "true", "false", "grep", "stat", "touch",
    "mount", "ps", "readlink", "test", "umask", "wc", "head", "env", "pwd", "kill",
];

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.exists(),
        "tests need Debian's busybox-static at /bin/busybox"
    );
    p
}

/// One copy of busybox per test process, hard-linked into every rootfs.
/// Copying it per bundle raced with the other test threads: a fork while
/// the copy was open for writing kept a writer alive in the child until its
/// exec, and a container exec'ing busybox then failed with ETXTBSY. A link
/// has no writer, and containers write to this copy, never the host's.
fn shared_busybox() -> &'static PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = PathBuf::from("/tmp/berth-test");
        std::fs::create_dir_all(&dir).unwrap();
        // Named after the host binary's size and mtime, so every test
        // process shares one copy and a new busybox gets a new one.
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(busybox()).unwrap();
        let p = dir.join(format!(".busybox-{}-{}", m.size(), m.mtime()));
        if !p.exists() {
            let tmp = dir.join(format!(".busybox.{}.tmp", std::process::id()));
            std::fs::copy(busybox(), &tmp).unwrap();
            std::fs::rename(&tmp, &p).unwrap();
        }
        p
    })
}

impl Bundle {
    pub fn new(tag: &str) -> Bundle {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("{tag}-{}-{n}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/berth-test/{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::hard_link(shared_busybox(), rootfs.join("bin/busybox")).unwrap();
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        let out = Command::new(berth_bin())
            .args(["spec", "-b"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "berth spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
        let cgroup = format!("/berth-test/{name}");
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(["true"]);
        config["linux"]["cgroupsPath"] = json!(cgroup);
        Bundle {
            root: dir.join("state"),
            dir,
            name,
            cgroup,
            config,
        }
    }

    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    pub fn sh(&mut self, script: &str) -> &mut Self {
        self.args(&["sh", "-c", script])
    }

    pub fn write(&self) {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    pub fn id(&self) -> String {
        self.name.clone()
    }

    /// Run berth with stdout/stderr in files: a created container inherits
    /// them, so waiting for pipes to close would wait for the container.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.write();
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!(".out{n}")),
            self.dir.join(format!(".err{n}")),
        );
        let status = Command::new(berth_bin())
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// `berth run` in the foreground; returns (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        let id = self.id();
        let out = self.berth(&["run", "-b", self.dir.to_str().unwrap(), &id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A failing command: returns its one-line stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(!out.status.success(), "berth {args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
        assert_eq!(
            err.lines().count(),
            1,
            "one-line error expected, got {err:?}"
        );
        assert!(err.starts_with("berth: "), "{err}");
        err
    }

    pub fn status(&self) -> String {
        let out = self.ok(&["state", &self.id()]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["status"].as_str().unwrap().to_string()
    }

    /// Assert that no trace of this bundle's containers remains: state
    /// dirs, mounts under the bundle, cgroup dirs, processes.
    pub fn assert_clean(&self) {
        let leftovers: Vec<_> = std::fs::read_dir(&self.root)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "state left behind: {leftovers:?}");
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = self.dir.to_str().unwrap();
        let mounts: Vec<_> = mi.lines().filter(|l| l.contains(bundle)).collect();
        assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
        for c in cgroup_dirs(&self.cgroup) {
            assert!(!c.exists(), "cgroup left behind: {}", c.display());
        }
    }
}

/// Every place a cgroup path could live on this host (v1 controllers, hybrid unified, v2).
pub fn cgroup_dirs(path: &str) -> Vec<PathBuf> {
    let rel = path.trim_start_matches('/');
    let mut out = Vec::new();
    if let Ok(d) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in d.flatten() {
            let p = e.path();
            if p.join("cgroup.procs").exists() || p.join("cgroup.controllers").exists() {
                out.push(p.join(rel));
            }
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        out.push(Path::new("/sys/fs/cgroup").join(rel));
    }
    out
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Best-effort cleanup so a failed test does not break the next run.
        if let Ok(d) = std::fs::read_dir(&self.root) {
            for e in d.flatten() {
                let _ = Command::new(berth_bin())
                    .arg("--root")
                    .arg(&self.root)
                    .args(["delete", "-f"])
                    .arg(e.file_name())
                    .output();
            }
        }
        let _ = Command::new("umount")
            .arg("-R")
            .arg("-l")
            .arg(self.dir.join("rootfs"))
            .output();
        for c in cgroup_dirs(&self.cgroup).into_iter().rev() {
            let _ = std::fs::remove_dir(c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether cgroup v1's memory controller counts swap (memory.memsw.*,
/// absent when the kernel runs with swapaccount=0 or without swap support).
/// On pure v2, swap has its own memory.swap.max and this is true.
pub fn host_has_memsw() -> bool {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    !v1.exists() || v1.join("memory.memsw.limit_in_bytes").exists()
}
