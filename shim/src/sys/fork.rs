//! The in-process helper's forks (src/helper.rs) and what its forked
//! children do before they run berth or exit.
//!
//! Every caller is single-threaded: the serving shim forks the helper
//! before it starts any thread, the helper never starts one, and the
//! short-lived `delete` action runs on its main thread alone. A forked
//! child therefore gets a consistent copy of the heap and of every lock,
//! which is what makes these forks sound. A new caller must keep to that.

use std::os::fd::{AsRawFd, BorrowedFd};

pub use nix::unistd::ForkResult;

/// fork(2) of a single-threaded caller (see the module comment).
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: nix marks fork unsafe because a child of a threaded process
    // may inherit a lock another thread held. Our callers have no other
    // thread (module comment).
    unsafe { nix::unistd::fork() }
}

/// Leave a forked child now: no atexit handlers, no destructors of the
/// parent's objects, no flushing of the parent's buffers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Close every fd from 3 up but `keep`, in a forked child that holds no
/// object it still uses for those fds: they were inherited, or their
/// owners live in frames the child never returns to (it leaves through
/// `exit_now`, so they are never used or dropped).
pub fn close_all_from_3_but(keep: BorrowedFd<'_>) {
    let keep = keep.as_raw_fd() as u32;
    if keep > 3 {
        close_range(3, keep - 1);
    }
    close_range(keep.max(2) + 1, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    if first <= last {
        // SAFETY: close_range(2) on numbers the caller owns no object for
        // (see close_all_from_3_but); a number nothing holds is skipped.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    }
}
