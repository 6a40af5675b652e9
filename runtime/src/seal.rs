//! CVE-2019-5736: a container must never get a writable handle on the host's
//! runtime binary.
//!
//! berth does not re-execute itself for the init: the init is a clone of the
//! berth process, so until its final execve its /proc/PID/exe is the host's
//! berth (or shim) binary. Marking the init non-dumpable keeps other
//! container processes out of it, but not the init's own execve: an
//! entrypoint script starting `#!/proc/self/exe` (or an ELF whose
//! interpreter is that path) makes the kernel resolve the interpreter in the
//! init, load the host binary into the container and run it there,
//! dumpable. A second container process can then open /proc/PID/exe and
//! write to it once that process exits. Whether the exec goes through
//! depends on nothing but the binary: a static one (the shim, and berth by
//! default) needs no loader, a dynamic one only the rootfs's ld.so.
//!
//! So a command that makes container processes first re-executes itself
//! from a copy nobody can write: a detached read-only bind mount of its own
//! file (no mount is visible anywhere, and the page cache is shared, so it
//! costs one execve and no memory), or, where berth may not mount (an
//! ordinary user who can write the binary), a sealed memfd copy. An
//! ordinary user who cannot write it needs neither. crun copies on every
//! call; runc seals through a private overlay mount. A program that starts
//! berth can hand it such a view to run from ([`read_only_view_of`]): the
//! shim does for its helper, which then finds itself sealed at once.
//!
//! The re-execution happens as early as it can: at the binary's entry
//! point, before libc starts (`sys::entry`), for root; [`ensure_sealed`],
//! after the command line is parsed, checks it and does it for whatever
//! the entry point left (an ordinary user, a failure). Measured on a
//! 2-core VM, sealing from `main` made `run`, `create` and `exec` 1.0–1.3
//! ms slower than a binary on a read-only mount; from the entry point it
//! costs 0.1 ms. Nearly all of it was the first image starting up: glibc's
//! CPU and cache probing alone takes 0.7 ms there, as each of its ~70
//! `cpuid` instructions traps to the hypervisor (9.5 µs each on that VM),
//! then the Rust runtime and clap's parse with their page faults. The
//! exec and the detached mount's teardown are small: dropping the mount
//! when its fd closes at the exec waits for an expedited RCU grace period,
//! about 0.06 ms. A memfd would avoid that wait but copy 5 MB per call.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::error::{Context, Error, Result};
use crate::sys;

/// Set across the re-execution, so that a copy that still does not read as
/// sealed is an error rather than an endless loop of execs. Its value is
/// the path of the binary berth was started from (see [`original_exe`]).
pub(crate) const MARK: &str = "_BERTH_SEALED_EXE";

/// The path the re-executed process was started from, taken from [`MARK`].
static ORIGINAL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The binary this process was started from, where the files installed
/// with it are (the systemd driver's helper): after the re-execution
/// /proc/self/exe is the sealed copy, a detached mount or a memfd, which
/// is next to nothing.
pub fn original_exe() -> PathBuf {
    if let Some(p) = ORIGINAL.get() {
        return p.clone();
    }
    std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

/// Is `exe` one no one can write: on a read-only mount, or a memfd sealed
/// against writes?
fn sealed(exe: &File) -> Result<bool> {
    let vfs = fstatvfs(exe.as_fd()).ctx(|| "statvfs of /proc/self/exe")?;
    if vfs.flags().contains(FsFlags::ST_RDONLY) {
        return Ok(true);
    }
    Ok(match fcntl(exe, FcntlArg::F_GET_SEALS) {
        Ok(s) => SealFlag::from_bits_truncate(s).contains(SealFlag::F_SEAL_WRITE),
        Err(_) => false,
    })
}

/// Make sure this process runs from a sealed copy of its binary: return at
/// once if it already does, else re-execute the same command line from one
/// (and return only on failure). Call it while single-threaded.
pub fn ensure_sealed() -> Result<()> {
    let exe = File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    if sealed(&exe)? {
        if let Some(original) = std::env::var_os(MARK) {
            if !original.is_empty() {
                let _ = ORIGINAL.set(PathBuf::from(original));
            }
            // Not for hooks or anything else this process starts.
            std::env::remove_var(MARK);
            // An exec through an fd names the process after the fd (or the
            // memfd) on older kernels; ps and pgrep should still see berth.
            if let Some(name) = std::env::args_os().next() {
                let base = std::path::Path::new(&name).file_name().unwrap_or_default();
                if let Ok(c) = CString::new(base.as_encoded_bytes()) {
                    let _ = nix::sys::prctl::set_name(&c);
                }
            }
        }
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root()
        && nix::unistd::access("/proc/self/exe", nix::unistd::AccessFlags::W_OK).is_err()
    {
        // An ordinary user who cannot write the binary (an installed berth
        // owned by root): neither can containers, which hold at most this
        // user's rights on host files. No copy needed.
        return Ok(());
    }
    if std::env::var_os(MARK).is_some() {
        return Err(Error::Init(
            "the sealed copy of berth's binary is still writable; refusing to run containers from it (CVE-2019-5736)".into(),
        ));
    }
    let copy = match read_only_view(c"/proc/self/exe") {
        Ok(fd) => fd,
        Err(_) => sealed_memfd(&exe)?,
    };
    std::env::set_var(MARK, original_exe());
    let argv = cstrings(std::env::args_os())?;
    let envp = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    let err = sys::proc::fexecve(copy.as_fd(), &argv, &envp);
    std::env::remove_var(MARK);
    Err(Error::Io {
        ctx: "re-execute berth from its sealed copy".into(),
        source: err,
    })
}

/// The variable that names, to a berth started from a sealed copy, the
/// file it was copied from (see [`original_exe`]).
pub const ORIGINAL_ENV: &str = MARK;

/// A read-only view of `binary`, for a program that starts berth sealed
/// from the outset (the shim starting its helper): exec'd as
/// /proc/self/fd/N with [`ORIGINAL_ENV`] set to `binary`, berth finds itself
/// sealed and skips its own re-execution.
pub fn read_only_view_of(binary: &std::path::Path) -> Result<OwnedFd> {
    let path = sys::cstring(binary.as_os_str())
        .ctx(|| format!("read-only view of {}", binary.display()))?;
    read_only_view(&path).ctx(|| format!("read-only view of {}", binary.display()))
}

/// A detached read-only bind mount of `path`: writes through it, and
/// so through /proc/PID/exe of whatever runs from it, fail with EROFS.
fn read_only_view(path: &std::ffi::CStr) -> std::io::Result<OwnedFd> {
    // Close-on-exec: no child of berth or of the shim may inherit it.
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    let fd = sys::open_tree(sys::CWD, path, flags as libc::c_uint)?;
    let ro = sys::MountAttr {
        set: libc::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sys::mount_setattr_fd(fd.as_fd(), ro, false)?;
    Ok(fd)
}

/// A copy in a memfd, sealed so nothing can change it any more.
fn sealed_memfd(exe: &File) -> Result<OwnedFd> {
    let fd = memfd_create(
        c"berth",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx(|| "memfd for a sealed copy of berth")?;
    let mut dst = File::from(fd);
    std::io::copy(&mut &*exe, &mut dst).ctx(|| "copy berth into a memfd")?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&dst, FcntlArg::F_ADD_SEALS(seals)).ctx(|| "seal berth's memfd copy")?;
    Ok(dst.into())
}

fn cstrings(items: impl Iterator<Item = OsString>) -> Result<Vec<CString>> {
    items
        .map(|s| {
            CString::new(s.into_vec())
                .map_err(|_| Error::Invalid("an argument or variable holds a NUL byte".into()))
        })
        .collect()
}
