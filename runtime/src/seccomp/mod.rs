//! `linux.seccomp`: the profile is compiled into a libseccomp filter while
//! the init still runs setup (so profile errors reach `create`), and loaded
//! later, at the point the caller picks (see process/init.rs for runc's timing).

mod build;

use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::ScmpFilterContext;
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
}

impl SeccompError {
    fn lib(ctx: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> Self {
        let ctx = ctx.into();
        move |source| SeccompError::Lib { ctx, source }
    }
}

/// A compiled profile, ready to load.
pub struct Filter {
    ctx: ScmpFilterContext,
    /// Some rule uses SCMP_ACT_NOTIFY, so loading yields a listener fd.
    notify: bool,
}

/// Compile a profile without loading it.
pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    build::compile(s)
}

impl Filter {
    /// Whether loading returns a notify listener fd.
    pub fn wants_listener(&self) -> bool {
        self.notify
    }

    /// Install the filter on the calling thread. Without no_new_privs this
    /// needs CAP_SYS_ADMIN. Returns the notify listener fd when a rule uses
    /// SCMP_ACT_NOTIFY.
    pub fn load(self) -> Result<Option<OwnedFd>, SeccompError> {
        self.ctx.load().map_err(SeccompError::lib("load filter"))?;
        if !self.notify {
            return Ok(None);
        }
        let fd = self
            .ctx
            .get_notify_fd()
            .map_err(SeccompError::lib("get notify fd"))?;
        // SAFETY: libseccomp hands the listener fd to us; nothing else closes it.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

/// Compile and load `s` on the calling thread.
pub fn load(s: &LinuxSeccomp) -> Result<Option<OwnedFd>, SeccompError> {
    compile(s)?.load()
}
