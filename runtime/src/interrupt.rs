//! Steps of the lifecycle that berth can be interrupted at (see
//! CRASH-CONSISTENCY.md).
//!
//! While `create` (and `run` up to the container's start) is making things,
//! SIGTERM, SIGINT and SIGHUP are caught rather than fatal: the handler only
//! records the signal, and the next [`step`] (or a blocking wait that the
//! signal interrupts with EINTR) turns it into [`Error::Interrupted`], which
//! unwinds through the same undo path as any other failure.
//!
//! With the `fault-injection` cargo feature, [`step`] is also a fault point:
//! when `BERTH_FAULT_POINT` names the step, berth raises
//! `BERTH_FAULT_SIGNAL` (KILL or TERM) at itself there, exactly as if the
//! signal had arrived from outside at that moment; `BERTH_FAULT_TRACE` names
//! a file each step appends its name to, so a test can list the steps a
//! command passes. Release builds carry none of this.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};

use crate::error::{Error, Result};
use crate::sys::signal::set_action;

static CAUGHT: AtomicI32 = AtomicI32::new(0);

const CAUGHT_SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

extern "C" fn record(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
}

/// Catches the signals while alive; the previous dispositions come back on drop.
pub struct Guard {
    old: Vec<(Signal, SigAction)>,
}

/// Start catching SIGTERM, SIGINT and SIGHUP. Without SA_RESTART, so a
/// blocking call returns EINTR and its caller can check [`check`].
pub fn catch() -> Guard {
    let act = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::empty(),
        SigSet::empty(),
    );
    let mut old = Vec::new();
    for s in CAUGHT_SIGNALS {
        // The handler only stores to an atomic (async-signal-safe).
        if let Ok(prev) = set_action(s, &act) {
            old.push((s, prev));
        }
    }
    Guard { old }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (s, prev) in self.old.drain(..).rev() {
            let _ = set_action(s, &prev);
        }
    }
}

/// In a child cloned from berth (the container init, an exec'd process):
/// the default dispositions, so signals sent to the container act on it.
pub fn reset_in_child() {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for s in CAUGHT_SIGNALS {
        let _ = set_action(s, &dfl);
    }
}

/// An error if a caught signal is pending.
pub fn check() -> Result<()> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => Ok(()),
        s => Err(Error::Interrupted(
            Signal::try_from(s).map_or_else(|_| s.to_string(), |s| s.as_str().to_string()),
        )),
    }
}

/// A step boundary named `name`: a fault point in test builds, then
/// [`check`].
pub fn step(name: &'static str) -> Result<()> {
    fault::point(name);
    check()
}

/// A fault point only, for steps of an undo path, which must go on whatever
/// was caught.
pub fn point(name: &'static str) {
    fault::point(name);
}

#[cfg(feature = "fault-injection")]
mod fault {
    use std::io::Write;

    pub fn point(name: &str) {
        if let Some(trace) = std::env::var_os("BERTH_FAULT_TRACE") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(trace)
            {
                let _ = writeln!(f, "{name}");
            }
        }
        if std::env::var("BERTH_FAULT_POINT").as_deref() != Ok(name) {
            return;
        }
        use nix::sys::signal::Signal;
        let sig = match std::env::var("BERTH_FAULT_SIGNAL").as_deref() {
            Ok("TERM") => Signal::SIGTERM,
            Ok("INT") => Signal::SIGINT,
            Ok("HUP") => Signal::SIGHUP,
            _ => Signal::SIGKILL,
        };
        let _ = nix::sys::signal::raise(sig);
    }
}

#[cfg(not(feature = "fault-injection"))]
mod fault {
    #[inline(always)]
    pub fn point(_: &str) {}
}
