//! Signal dispositions.

use std::io;

use nix::sys::signal::{SigAction, Signal};

/// sigaction(2); returns the previous action. nix marks it unsafe because
/// a handler runs at any point of the program. Berth installs only the
/// default disposition and interrupt::record, which stores to an atomic
/// (async-signal-safe); a new handler must keep to that.
pub(crate) fn set_action(sig: Signal, act: &SigAction) -> io::Result<SigAction> {
    // SAFETY: see above.
    Ok(unsafe { nix::sys::signal::sigaction(sig, act) }?)
}
