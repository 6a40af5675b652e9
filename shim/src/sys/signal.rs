//! Signal dispositions without a handler.

use nix::sys::signal::{SigHandler, Signal};

/// Ignore `sig` (SIGPIPE: a vanished peer must be an EPIPE error).
pub fn ignore(sig: Signal) -> nix::Result<()> {
    set(sig, false)
}

/// Put `sig` back to its default action (a forked worker, which an exec
/// would have reset).
#[cfg(feature = "in-process")]
pub fn set_default(sig: Signal) -> nix::Result<()> {
    set(sig, true)
}

fn set(sig: Signal, default: bool) -> nix::Result<()> {
    let h = if default {
        SigHandler::SigDfl
    } else {
        SigHandler::SigIgn
    };
    // SAFETY: nix marks signal(2) unsafe for the handler it may install,
    // which runs at any point of the program. SIG_DFL and SIG_IGN run no
    // code of ours.
    unsafe { nix::sys::signal::signal(sig, h) }.map(drop)
}
