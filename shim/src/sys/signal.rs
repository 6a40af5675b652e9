//! Signal dispositions without a handler.

use nix::sys::signal::{SigHandler, Signal};

/// Ignore `sig` (SIGPIPE: a vanished peer must be an EPIPE error).
pub fn ignore(sig: Signal) -> nix::Result<()> {
    // SAFETY: nix marks signal(2) unsafe for the handler it may install,
    // which runs at any point of the program. SIG_IGN runs no code of ours.
    unsafe { nix::sys::signal::signal(sig, SigHandler::SigIgn) }.map(drop)
}
