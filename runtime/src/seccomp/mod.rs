//! `linux.seccomp`: the profile is compiled with libseccomp into a BPF
//! program while the init still runs setup (so profile errors reach
//! `create`), and loaded later with one seccomp(2) call, at the point the
//! caller picks (see process/apply.rs). berth loads the program itself
//! because it prepends the ENOSYS stub (see enosys.rs) and passes filter
//! flags libseccomp 2.5 does not know.

mod agent;
mod arch;
mod bpf;
mod build;
mod enosys;

pub use agent::{send as send_to_agent, validate};

use std::os::fd::OwnedFd;

use oci_spec::runtime::LinuxSeccomp;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A profile value berth or libseccomp cannot express; `field` is its JSON path.
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },
    #[error("linux.seccomp: {ctx}: {source}")]
    Lib {
        ctx: String,
        #[source]
        source: libseccomp::error::SeccompError,
    },
    #[error("linux.seccomp: {ctx}: {source}")]
    Io {
        ctx: String,
        #[source]
        source: std::io::Error,
    },
}

impl SeccompError {
    fn lib(ctx: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> Self {
        let ctx = ctx.into();
        move |source| SeccompError::Lib { ctx, source }
    }
}

/// Refuse a profile under which the container process could never start:
/// one answering execve with an error or a kill, unconditionally. runc
/// 1.1 either hangs on such a profile (kill) or fails `run` late with
/// "container process is already dead" (errno); berth says why, up front.
/// A rule with argument conditions leaves the outcome to the arguments, so
/// it is not judged.
pub fn check_exec_allowed(s: &LinuxSeccomp) -> Result<(), SeccompError> {
    use oci_spec::runtime::LinuxSeccompAction as A;
    let mut verdict = (
        s.default_action(),
        "linux.seccomp.defaultAction".to_string(),
    );
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        if !sc.names().iter().any(|n| n == "execve") {
            continue;
        }
        if sc.args().as_ref().is_some_and(|a| !a.is_empty()) {
            return Ok(());
        }
        verdict = (sc.action(), format!("linux.seccomp.syscalls[{i}].action"));
    }
    match verdict.0 {
        A::ScmpActErrno
        | A::ScmpActKill
        | A::ScmpActKillProcess
        | A::ScmpActKillThread
        | A::ScmpActTrap => Err(SeccompError::Invalid {
            field: verdict.1,
            msg: format!(
                "{:?} for execve: the container process could never start",
                verdict.0
            ),
        }),
        _ => Ok(()),
    }
}

/// A compiled profile, ready to load.
pub struct Filter {
    prog: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* for seccomp(2).
    flags: libc::c_ulong,
}

/// Compile a profile without loading it.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    build::compile(s)
}

impl Filter {
    /// Whether loading returns a notify listener fd (some rule uses SCMP_ACT_NOTIFY).
    pub fn wants_listener(&self) -> bool {
        self.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }

    /// Install the filter on the calling thread: one syscall, no allocation.
    /// Without no_new_privs this needs CAP_SYS_ADMIN.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        bpf::load(&self.prog, self.flags)
    }
}

#[cfg(fuzzing)]
impl Filter {
    /// The program `load` would install (the fuzz target checks its shape).
    pub fn program(&self) -> &[libc::sock_filter] {
        &self.prog
    }
}

/// Compile and load `s` on the calling thread.
pub fn load(s: &LinuxSeccomp) -> Result<Option<OwnedFd>, SeccompError> {
    compile(s)?.load()
}

/// What `compile` recognises, for `berth features`.
pub mod known {
    use oci_spec::runtime::{
        Arch, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    };

    pub fn actions() -> &'static [LinuxSeccompAction] {
        super::build::ACTIONS
    }
    pub fn operators() -> &'static [LinuxSeccompOperator] {
        super::build::OPERATORS
    }
    pub fn archs() -> impl Iterator<Item = Arch> {
        super::arch::ARCHES.iter().map(|(a, _)| *a)
    }
    pub fn flags() -> impl Iterator<Item = LinuxSeccompFilterFlag> {
        super::build::FLAGS.iter().map(|(f, _)| *f)
    }

    /// Whether this kernel accepts `f`: seccomp(2) checks the flags before
    /// it reads the program, so a NULL program fails with EFAULT for known
    /// flags and EINVAL for unknown ones, and nothing is loaded.
    pub fn flag_supported(f: LinuxSeccompFilterFlag) -> bool {
        let Some(&(_, bits)) = super::build::FLAGS.iter().find(|(k, _)| *k == f) else {
            return false;
        };
        if bits == 0 {
            return true;
        }
        crate::sys::bpf::seccomp_flags_supported(bits)
    }
}
