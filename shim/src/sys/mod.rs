//! The shim's one syscall layer: `unsafe` lives here and nowhere else in
//! the shim (runtime/tests/module_graph.rs checks it).
//!
//! Most calls are safe in nix, rustix or std, and the shim makes them where
//! it needs them. What is left is wrapped here once, each behind a safe
//! function whose comment says what its callers must keep to:
//! - [`malloc`] mallopt, which no crate wraps;
//! - [`fork`] the helper's fork and the steps of its forked children
//!   (closing inherited fds, _exit);
//! - [`signal`] setting a disposition without a handler;
//! - [`spawn`] placing fds in a spawned child between fork and exec;
//! - [`socket`] the inherited listener, and receiving fds (rustix, safe);
//! - [`tty`] the pty's window size (rustix, safe).

#[cfg(feature = "in-process")]
pub mod fork;
pub mod malloc;
pub mod signal;
pub mod socket;
pub mod spawn;
pub mod tty;

/// nix's error for a rustix one, as the shim's `Error::Sys` holds.
fn errno(e: rustix::io::Errno) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error())
}
