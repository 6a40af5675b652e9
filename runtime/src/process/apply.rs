//! The last steps shared by a container's init and `berth exec`: the
//! process's limits, credentials, capabilities, seccomp filter and cwd, then
//! execve with nothing of berth's left open.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, Process};

use crate::error::{Context, Error, Result};
use crate::{security, sys};

/// A process ready for execve.
pub struct Prepared {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// A filter still to load right before execve (no_new_privs is set).
    seccomp: Option<crate::seccomp::Filter>,
}

impl Prepared {
    /// The environment the program gets, as `KEY=VALUE` strings.
    pub fn env(&self) -> impl Iterator<Item = String> + '_ {
        self.envp.iter().map(|kv| kv.to_string_lossy().into_owned())
    }
}

/// Apply `p` to the calling process, up to but not including execve.
/// `listener` receives the seccomp notify fd, when the profile has one.
pub fn prepare(
    p: &Process,
    linux: Option<&Linux>,
    listener: &mut dyn FnMut(OwnedFd) -> Result<()>,
) -> Result<Prepared> {
    if let Some(r) = p.rlimits() {
        security::set_rlimits(r)?;
    }
    if let Some(m) = linux.and_then(|l| l.memory_policy().as_ref()) {
        crate::placement::apply_mempolicy(m)?;
    }
    if let Some(pers) = linux.and_then(|l| l.personality().as_ref()) {
        set_personality(pers)?;
    }
    if let Some(io) = p.io_priority() {
        security::set_io_priority(io)?;
    }
    if let Some(s) = p.scheduler() {
        security::set_scheduler(s)?;
    }
    // As runc: chdir while still root, so the check (getcwd) runs before
    // a profile that may deny it is loaded; if root may not enter the
    // directory (a volume owned by the container user), retry as the user.
    let cwd_done = chdir_as_root(p.cwd())?;
    // Before any seccomp filter (as runc), which may deny the write; the
    // kernel applies both at execve.
    crate::lsm::apply_on_exec(p)?;
    // Compiled now so profile errors reach the caller. Without
    // no_new_privs loading needs CAP_SYS_ADMIN, so it happens before the
    // caps are dropped; with it, as late as possible, just before execve,
    // so the profile need not allow what berth does on the way (runc's
    // rule). A notify listener must reach berth while it still listens,
    // so that case loads here too.
    let nnp = p.no_new_privileges().unwrap_or(false);
    let mut seccomp = match linux.and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::compile(s)?),
        None => None,
    };
    if !nnp || seccomp.as_ref().is_some_and(|f| f.wants_listener()) {
        if let Some(f) = seccomp.take() {
            if let Some(fd) = f.load()? {
                listener(fd)?;
            }
        }
    }
    security::apply_user_and_caps(p)?;
    if nnp {
        security::set_no_new_privs()?;
    }
    let umask = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    if !cwd_done {
        chdir_inside(p.cwd())?;
    }
    let env: Vec<String> = p.env().clone().unwrap_or_default();
    let args = p.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(Error::field("process.args", "must not be empty"));
    };
    let path = find_executable(arg0, &env)?;
    let cstr = |s: &str| CString::new(s).map_err(|_| Error::Invalid(format!("NUL byte in {s:?}")));
    Ok(Prepared {
        path: cstr(&path.to_string_lossy())?,
        argv: args.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        envp: env.iter().map(|a| cstr(a)).collect::<Result<_>>()?,
        seccomp,
    })
}

/// execve the prepared process. Every fd above the preserved ones is
/// marked close-on-exec first. Returns only on failure.
pub fn exec(e: &Prepared, preserve_fds: i32) -> Error {
    let _ = sys::proc::close_range(3 + preserve_fds as u32, u32::MAX, true);
    reset_signals();
    let argv = sys::proc::CArray::new(&e.argv);
    let envp = sys::proc::CArray::new(&e.envp);
    // Borrowed, so nothing is freed (no syscall) between the load and execve.
    if let Some(f) = &e.seccomp {
        if let Err(err) = f.load() {
            return err.into();
        }
    }
    let err = sys::proc::execve(&e.path, &argv, &envp);
    Error::Io {
        ctx: format!("exec {:?}", e.path),
        source: err,
    }
}

/// Restore what the user's program must inherit: Rust ignores SIGPIPE, and
/// an ignored disposition survives execve.
fn reset_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    let _ = sys::signal::set_action(Signal::SIGPIPE, &dfl);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Close every fd from `min` up that init does not need, so nothing the
/// caller leaked (a host directory, say: CVE-2024-21626) reaches the container.
pub(crate) fn close_fds_except(min: i32, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&f| f >= min).collect();
    keep.sort_unstable();
    let mut lo = min as u32;
    for k in keep.into_iter().map(|k| k as u32) {
        if k > lo {
            let _ = sys::proc::close_range(lo, k - 1, false);
        }
        lo = k + 1;
    }
    let _ = sys::proc::close_range(lo, u32::MAX, false);
}

/// `chdir_inside`, but false where permission is denied, to retry later.
fn chdir_as_root(cwd: &Path) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Err(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => Ok(false),
        r => r
            .ctx(|| format!("chdir to cwd {}", cwd.display()))
            .and_then(|()| verify_cwd(cwd))
            .map(|()| true),
    }
}

/// chdir to the configured cwd and prove it is inside the container root.
fn chdir_inside(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).ctx(|| format!("chdir to cwd {}", cwd.display()))?;
    verify_cwd(cwd)
}

/// A cwd reached through a leaked fd would be "(unreachable)".
fn verify_cwd(cwd: &Path) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(Error::Invalid(format!(
            "cwd {} is outside the container root",
            cwd.display()
        ))),
    }
}

fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let executable = |p: &Path| {
        nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
            && std::fs::metadata(p).is_ok_and(|m| m.is_file())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(Error::Invalid(format!(
                "exec: {arg0:?}: no such executable file"
            )))
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(arg0))
        .find(|p| executable(p))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "exec: {arg0:?}: executable file not found in $PATH"
            ))
        })
}

fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Unsupported("linux.personality.flags".into()));
    }
    let persona = match p.domain() {
        D::PerLinux => 0x0000,
        D::PerLinux32 => 0x0008,
    };
    nix::sys::personality::set(nix::sys::personality::Persona::from_bits_retain(persona))
        .map(drop)
        .ctx(|| "personality")
}
