//! Running the `criu` binary (its plain command line) and turning a failure
//! into one line quoted from its log, as engines show only our last line.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cgroups::Cgroup;

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
        let mut p = [0; 2];
        // SAFETY: p has room for the two fds.
        if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(spawn_err(io::Error::last_os_error()));
        }
        // SAFETY: fresh fds we own.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
        // SAFETY: berth is single-threaded, so the child may allocate.
        match unsafe { libc::fork() } {
            -1 => Err(spawn_err(io::Error::last_os_error())),
            0 => {
                // Above every fd number the child dup2s onto.
                // SAFETY: duplicating an fd we own.
                let w = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 2000) };
                let e = child(argv, cgroup, fds, quiet).to_string();
                // SAFETY: writing our message to the pipe, then leaving the
                // forked child without running destructors.
                unsafe {
                    libc::write(w, e.as_ptr().cast(), e.len());
                    libc::_exit(127)
                }
            }
            pid => {
                drop(wr);
                let mut why = String::new();
                let _ = std::fs::File::from(rd).read_to_string(&mut why);
                let mut status = 0;
                // SAFETY: waiting for our own child.
                while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(spawn_err(e));
                    }
                }
                if !why.is_empty() {
                    return Err(spawn_err(io::Error::other(why)));
                }
                if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                    return Ok(());
                }
                let s = if libc::WIFEXITED(status) {
                    format!("exit status {}", libc::WEXITSTATUS(status))
                } else {
                    format!("killed by signal {}", libc::WTERMSIG(status))
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
    // Move the sources above every target first, so no dup2 clobbers one.
    let base = 1000;
    for (i, (src, _)) in fds.iter().enumerate() {
        // SAFETY: fd numbers we own; the targets are free in a fresh child.
        if unsafe { libc::dup2(*src, base + i as RawFd) } < 0 {
            return io::Error::last_os_error();
        }
    }
    for (i, (_, dst)) in fds.iter().enumerate() {
        // SAFETY: as above; dup2 clears FD_CLOEXEC on the target.
        if unsafe { libc::dup2(base + i as RawFd, *dst) } < 0 {
            return io::Error::last_os_error();
        }
    }
    for i in 0..fds.len() {
        // SAFETY: closing our temporary copies.
        unsafe { libc::close(base + i as RawFd) };
    }
    if quiet {
        // SAFETY: opening /dev/null and duplicating it over stdio.
        unsafe {
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
    }
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: argv is NUL-terminated strings ending in a null pointer.
    unsafe { libc::execvp(ptrs[0], ptrs.as_ptr()) };
    io::Error::last_os_error()
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
