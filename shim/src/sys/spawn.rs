//! What a spawned child does between fork and exec.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Where the sources are copied first: above every target.
const HIGH: RawFd = 10;

/// Have `cmd`'s child find fd `src` at number `dst` (without FD_CLOEXEC)
/// for each pair, and lead a new session if `new_session`. The sources
/// must be open when `cmd` spawns; the targets must be below 10.
pub fn place_fds<const N: usize>(cmd: &mut Command, fds: [(RawFd, RawFd); N], new_session: bool) {
    let place = move || {
        move_fds(&fds)?;
        if new_session {
            // Fails only for a group leader, which a fresh child is not.
            let _ = nix::unistd::setsid();
        }
        Ok(())
    };
    // SAFETY: between fork and exec, in a copy of a possibly threaded
    // process, the closure makes only async-signal-safe syscalls (fcntl,
    // dup2, setsid) on data it owns: no allocation, no lock.
    unsafe { cmd.pre_exec(place) };
}

fn move_fds<const N: usize>(fds: &[(RawFd, RawFd); N]) -> io::Result<()> {
    let mut high = [0; N];
    // SAFETY: fcntl and dup2 on fd numbers, in the child just before exec:
    // a bad source is EBADF, and the child owns no object for the targets
    // (it execs next, or exits if this fails).
    unsafe {
        // The sources go above the targets first, so no dup2 clobbers one
        // still to be placed. The copies are close-on-exec, the targets not.
        for (h, (src, _)) in high.iter_mut().zip(fds) {
            *h = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, HIGH);
            if *h < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        for (h, (_, dst)) in high.iter().zip(fds) {
            if libc::dup2(*h, *dst) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
