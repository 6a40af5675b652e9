//! Running the `criu` binary (its plain command line) and turning a failure
//! into one line quoted from its log, as engines show only our last line.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::Cgroup;
use crate::sys;

/// The CRIU program, looked up in PATH as runc does (unless `--criu` names another).
pub const CRIU: &str = "criu";

#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("criu {op}: cannot run {program}: {source}")]
    Spawn {
        op: &'static str,
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("criu {op} failed ({status}): {reason} (log: {log})")]
    Failed {
        op: &'static str,
        status: String,
        reason: String,
        log: PathBuf,
    },
}

/// The `Error (...)` lines of a CRIU log that tell what went wrong, without
/// their timestamps: the first and the last three (the cause is usually
/// among the last, followed by what gave up). CRIU also logs as errors the failures of helper programs it
/// merely probes with; those are skipped unless there is nothing else.
pub fn log_reason(text: &str) -> String {
    let all: Vec<&str> = text
        .lines()
        .filter_map(|l| l.find("Error (").map(|i| l[i..].trim()))
        .collect();
    let probe = |l: &&str| l.contains("): exited, status=") || l.contains("): execvp(");
    let fatal: Vec<&str> = all.iter().copied().filter(|l| !probe(l)).collect();
    let errors = if fatal.is_empty() { all } else { fatal };
    let mut picked: Vec<&str> = Vec::new();
    let n = errors.len();
    for (i, l) in errors.iter().enumerate() {
        if (i == 0 || i + 3 >= n) && !picked.contains(l) {
            picked.push(l);
        }
    }
    if picked.is_empty() {
        return "no error in the log".into();
    }
    if n > picked.len() {
        picked.insert(1, "...");
    }
    picked.join("; ")
}

/// One CRIU invocation: `criu OP ARGS...` with its log in `log_dir`.
pub struct Run {
    pub op: &'static str,
    pub args: Vec<OsString>,
    pub log_dir: PathBuf,
    pub log_file: &'static str,
}

impl Run {
    pub fn new(op: &'static str, log_dir: &Path, log_file: &'static str) -> Run {
        let mut r = Run {
            op,
            args: vec![CRIU.into(), op.into()],
            log_dir: log_dir.to_path_buf(),
            log_file,
        };
        r.arg("-v4").arg("-o").arg(log_file);
        r
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn flag(&mut self, on: bool, a: &str) -> &mut Self {
        if on {
            self.arg(a);
        }
        self
    }

    fn failed(&self, status: String) -> CriuError {
        let log = self.log_dir.join(self.log_file);
        let reason = std::fs::read_to_string(&log)
            .map(|t| log_reason(&t))
            .unwrap_or_else(|e| format!("no log ({e})"));
        CriuError::Failed {
            op: self.op,
            status,
            reason,
            log,
        }
    }

    /// Run CRIU and wait for it. With `cgroup`, CRIU is first moved into the
    /// container's cgroup, so that it restores the tasks there, and is told
    /// that cgroup as its root in every hierarchy (read back from its own
    /// /proc/self/cgroup, which is exactly what CRIU compares against).
    /// `fds` are (fd in berth, fd number in CRIU) pairs to pass on; CRIU
    /// inherits berth's stdio unless `quiet`.
    pub fn exec(
        &self,
        cgroup: Option<&Cgroup>,
        fds: &[(RawFd, RawFd)],
        quiet: bool,
    ) -> Result<(), CriuError> {
        let spawn_err = |source| CriuError::Spawn {
            op: self.op,
            program: self.args[0].to_string_lossy().into_owned(),
            source,
        };
        let mut argv: Vec<CString> = Vec::with_capacity(self.args.len() + 8);
        for a in &self.args {
            argv.push(CString::new(a.as_bytes()).map_err(|e| spawn_err(e.into()))?);
        }
        // The child reports why it could not exec CRIU through this pipe;
        // a successful exec closes it empty (O_CLOEXEC).
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
        match sys::clone::fork().map_err(spawn_err)? {
            0 => {
                // Above every fd number the child dup2s onto.
                let w = rustix::io::fcntl_dupfd_cloexec(&wr, 2000);
                let e = child(argv, cgroup, fds, quiet).to_string();
                if let Ok(w) = w {
                    let _ = sys::proc::write_raw(w.as_raw_fd(), e.as_bytes());
                }
                // Without running the parent's destructors.
                sys::proc::exit_now(127)
            }
            pid => {
                drop(wr);
                let mut why = String::new();
                let _ = std::fs::File::from(rd).read_to_string(&mut why);
                let status = loop {
                    match waitpid(Pid::from_raw(pid), None) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(e) => return Err(spawn_err(e.into())),
                        Ok(s) => break s,
                    }
                };
                if !why.is_empty() {
                    return Err(spawn_err(io::Error::other(why)));
                }
                let s = match status {
                    WaitStatus::Exited(_, 0) => return Ok(()),
                    WaitStatus::Exited(_, c) => format!("exit status {c}"),
                    WaitStatus::Signaled(_, sig, _) => format!("killed by signal {}", sig as i32),
                    other => format!("{other:?}"),
                };
                Err(self.failed(s))
            }
        }
    }
}

/// In the forked child: join the cgroup, wire the fds, exec CRIU. Returns
/// only on failure.
fn child(
    mut argv: Vec<CString>,
    cgroup: Option<&Cgroup>,
    fds: &[(RawFd, RawFd)],
    quiet: bool,
) -> io::Error {
    if let Some(cg) = cgroup {
        // "0" is the writing process itself.
        if let Err(e) = cg.add_pid(0) {
            return io::Error::other(e.to_string());
        }
        let Ok(own) = std::fs::read_to_string("/proc/self/cgroup") else {
            return io::Error::last_os_error();
        };
        for line in own.lines() {
            // "ID:CONTROLLERS:PATH"; the cgroup2 line has no controllers and
            // becomes the default root, as in runc.
            let mut f = line.splitn(3, ':');
            let (_, ctl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            let root = if ctl.is_empty() {
                path.to_string()
            } else {
                format!("{ctl}:{path}")
            };
            argv.push(c"--cgroup-root".into());
            match CString::new(root) {
                Ok(c) => argv.push(c),
                Err(e) => return e.into(),
            }
        }
    }
    if let Err(e) = sys::proc::remap_fds(fds) {
        return e;
    }
    if quiet {
        if let Ok(null) = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            let _ = nix::unistd::dup2_stdin(&null);
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
    }
    match nix::unistd::execvp(&argv[0], &argv) {
        Err(e) => e.into(),
        Ok(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::log_reason;

    #[test]
    fn reason_from_log() {
        let log = "(00.00) Error (criu/util.c:642): exited, status=1\n(00.01) vdso: Parsing\n(00.03) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
                   (00.04) Error (criu/vdso.c:613): vdso: Failed\n(00.05) Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        assert_eq!(
            log_reason(log),
            "Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds; Error (criu/vdso.c:613): vdso: Failed; Error (criu/crtools.c:260): Could not initialize kernel features detection."
        );
        assert_eq!(log_reason("ok\n"), "no error in the log");
        assert_eq!(
            log_reason("(0) Error (criu/util.c:642): exited, status=1\n"),
            "Error (criu/util.c:642): exited, status=1"
        );
    }
}
