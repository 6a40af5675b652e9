//! The berth binary's entry point (`-e berth_entry`, build.rs): it runs
//! before the C library's own `_start` (glibc's or musl's), re-executes a
//! command that makes container processes from a read-only view of the
//! binary, and otherwise goes on to `_start` as if it had never run. Why:
//! [`crate::seal`].
//!
//! Nothing is set up yet. In the static PIE the self-relocation and the
//! IFUNC relocations have not been applied, and there is no thread pointer
//! (TLS, errno). So this code:
//! - makes system calls itself, never through libc;
//! - calls no function of another crate, not even core's generic ones
//!   (`ptr::add`, `read_volatile`, `len`): an unoptimised build calls them
//!   through the GOT, which is not relocated yet. Only operators, casts,
//!   array indexing and its own functions;
//! - reads no pointer stored in static data (not relocated either): each
//!   constant is a byte array of its own, never a table of them;
//! - never lets the compiler emit memcpy, memset, memcmp or bcmp (IFUNCs,
//!   not resolved yet): buffers are zeroed statics, so no large local is
//!   zeroed or moved; the environment's copy loop ends on a value it
//!   reads, which the optimiser cannot turn into a libc call, and the only
//!   other copy is 18 constant bytes, which it writes as plain stores;
//! - gives up at the first surprise and lets `_start` run: the command
//!   then seals itself later, in `seal::ensure_sealed`, which also checks
//!   what this did.

use core::ptr::{addr_of_mut, null};

core::arch::global_asm!(
    ".globl berth_entry",
    ".type berth_entry, @function",
    "berth_entry:",
    // The kernel's (or, dynamic, ld.so's) stack and %rdx (a finaliser for
    // atexit) must reach _start untouched.
    "xor ebp, ebp",
    "mov rdi, rsp",
    "push rdx",
    "sub rsp, 8",
    "call {early}",
    "add rsp, 8",
    "pop rdx",
    "jmp _start",
    ".size berth_entry, . - berth_entry",
    early = sym early,
);

/// `seal::MARK` and "=".
const MARK_EQ: &[u8; 18] = b"_BERTH_SEALED_EXE=";
const MARK_LEN: usize = MARK_EQ.len();
const EXE: &[u8; 15] = b"/proc/self/exe\0";
const EMPTY: &[u8; 1] = b"\0";
/// Environment variables a re-execution can carry; more and it is left to
/// `seal::ensure_sealed`.
const ENV_MAX: usize = 1024;
/// [`MARK_EQ`] and the binary's path.
const MARK_MAX: usize = 4096 + 64;

const NULL: *const u8 = null();

static mut ENV: [*const u8; ENV_MAX] = [NULL; ENV_MAX];
static mut MARK_VAR: [u8; MARK_MAX] = [0; MARK_MAX];
// statfs(2) fills the kernel's struct statfs: on x86-64 every field is 64
// bits, and f_flags is the eleventh (after type, bsize, blocks, bfree,
// bavail, files, ffree, fsid, namelen, frsize), whichever libc this is.
static mut STATFS: [u64; 16] = [0; 16];
const STATFS_FLAGS: usize = 10;
static mut ATTR: [u64; 4] = [0; 4];

/// `sp` is the initial stack: argc, argv, NULL, envp, NULL, auxv.
unsafe extern "C" fn early(sp: *const usize) {
    // SAFETY: the kernel lays the stack out so (execve(2), the x86-64
    // psABI), and every string it points to is NUL-terminated.
    unsafe {
        let argc = *sp;
        let argv = (sp as usize + 8) as *const *const u8;
        let envp = (argv as usize + (argc + 1) * 8) as *const *const u8;
        if names_sealed_command(argc, argv) && syscall(libc::SYS_geteuid, 0, 0, 0, 0, 0) == 0 {
            reexec_sealed(argv, envp);
        }
    }
}

/// Re-execute from a detached read-only bind mount of /proc/self/exe,
/// with `seal::MARK` naming the path berth was started from; return if
/// that is not needed (already read-only, or already re-executed) or
/// fails.
unsafe fn reexec_sealed(argv: *const *const u8, envp: *const *const u8) {
    // SAFETY: every pointer is into the statics above (only this thread
    // exists) or to NUL-terminated strings; the lengths are checked.
    unsafe {
        let env = addr_of_mut!(ENV) as *mut *const u8;
        let mut n = 0;
        loop {
            let e = *at(envp, n);
            if e == NULL {
                break;
            }
            if starts_with(e, MARK_EQ) || n + 2 > ENV_MAX {
                return;
            }
            *at_mut(env, n) = e;
            n += 1;
        }
        let st = addr_of_mut!(STATFS) as *mut u64;
        if syscall(libc::SYS_statfs, addr(EXE), st as usize, 0, 0, 0) == 0
            && *at(st, STATFS_FLAGS) & libc::ST_RDONLY != 0
        {
            return;
        }
        let var = addr_of_mut!(MARK_VAR) as *mut u8;
        let mut k = 0;
        while k < MARK_LEN {
            *at_mut(var, k) = MARK_EQ[k];
            k += 1;
        }
        let room = MARK_MAX - k - 1;
        let path = at_mut(var, k);
        let len = syscall(
            libc::SYS_readlinkat,
            libc::AT_FDCWD as usize,
            addr(EXE),
            path as usize,
            room,
            0,
        );
        if len <= 0 || len as usize >= room {
            return;
        }
        *at_mut(path, len as usize) = 0;
        *at_mut(env, n) = var;
        *at_mut(env, n + 1) = NULL;

        let fd = syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD as usize,
            addr(EXE),
            (libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC) as usize,
            0,
            0,
        );
        if fd < 0 {
            return;
        }
        let attr = addr_of_mut!(ATTR) as *mut u64;
        *attr = libc::MOUNT_ATTR_RDONLY;
        if syscall(
            libc::SYS_mount_setattr,
            fd as usize,
            addr(EMPTY),
            libc::AT_EMPTY_PATH as usize,
            attr as usize,
            4 * 8,
        ) == 0
        {
            syscall(
                libc::SYS_execveat,
                fd as usize,
                addr(EMPTY),
                argv as usize,
                env as usize,
                libc::AT_EMPTY_PATH as usize,
            );
        }
        syscall(libc::SYS_close, fd as usize, 0, 0, 0, 0);
    }
}

/// Is the command one of those `seal::ensure_sealed` is called for
/// (create, run, exec)? The first word that is not an option (or the value
/// of a global option that takes one: cli.rs) is the command. A wrong
/// "no" costs only speed, the command then seals itself later; a wrong
/// "yes" leaves `seal::MARK` in the environment of a command that never
/// removes it, so options are skipped as clap reads them.
unsafe fn names_sealed_command(argc: usize, argv: *const *const u8) -> bool {
    // SAFETY: argv holds argc NUL-terminated strings.
    unsafe {
        let mut i = 1;
        while i < argc {
            let a = *at(argv, i);
            if *a != b'-' {
                return is(a, b"create") || is(a, b"run") || is(a, b"exec");
            }
            if is(a, b"--root")
                || is(a, b"--log")
                || is(a, b"--log-format")
                || is(a, b"--criu")
                || is(a, b"--rootless")
            {
                i += 1;
            }
            i += 1;
        }
        false
    }
}

/// Does the NUL-terminated `s` start with `word` (which holds no NUL)?
unsafe fn starts_with<const N: usize>(s: *const u8, word: &[u8; N]) -> bool {
    let mut i = 0;
    while i < N {
        // SAFETY: s is NUL-terminated and word holds no NUL, so the loop
        // stops at s's NUL at the latest.
        if unsafe { *at(s, i) } != word[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Is the NUL-terminated `s` exactly `word`?
unsafe fn is<const N: usize>(s: *const u8, word: &[u8; N]) -> bool {
    // SAFETY: as in starts_with; s's byte at N is at most its NUL.
    unsafe { starts_with(s, word) && *at(s, N) == 0 }
}

/// `p.add(i)`, by arithmetic (see the module's comment).
fn at<T>(p: *const T, i: usize) -> *const T {
    (p as usize + i * const { core::mem::size_of::<T>() }) as *const T
}

fn at_mut<T>(p: *mut T, i: usize) -> *mut T {
    at(p, i) as *mut T
}

fn addr<const N: usize>(s: &[u8; N]) -> usize {
    s as *const [u8; N] as usize
}

/// A raw system call: no errno (there is no thread pointer yet); a
/// negative result is the error.
unsafe fn syscall(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for `nr`.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::{names_sealed_command, MARK_EQ};
    use std::ffi::CString;

    #[test]
    fn the_mark_is_seals() {
        assert_eq!(MARK_EQ, format!("{}=", crate::seal::MARK).as_bytes());
    }

    fn sealed(args: &[&str]) -> bool {
        let owned: Vec<CString> = std::iter::once("berth")
            .chain(args.iter().copied())
            .map(|a| CString::new(a).unwrap())
            .collect();
        let mut ptrs: Vec<*const u8> = owned.iter().map(|c| c.as_ptr().cast()).collect();
        ptrs.push(std::ptr::null());
        // SAFETY: argc strings, each NUL-terminated, and a NULL.
        unsafe { names_sealed_command(owned.len(), ptrs.as_ptr()) }
    }

    #[test]
    fn the_command_is_the_first_word_after_the_global_options() {
        assert!(sealed(&["run", "-b", "x", "id"]));
        assert!(sealed(&["create", "id"]));
        assert!(sealed(&["exec", "id", "true"]));
        assert!(sealed(&[
            "--root", "/r", "--log", "l", "--debug", "exec", "id"
        ]));
        assert!(sealed(&["--root=/r", "--log-format", "json", "run", "id"]));
        assert!(sealed(&[
            "--criu",
            "c",
            "--rootless",
            "true",
            "--systemd-cgroup",
            "create",
            "x"
        ]));
        // A value is not the command, nor is anything after it.
        assert!(!sealed(&["--root", "run", "state", "x"]));
        assert!(!sealed(&["delete", "run"]));
        assert!(!sealed(&["state", "exec"]));
        assert!(!sealed(&["help", "run"]));
        assert!(!sealed(&["runx"]));
        assert!(!sealed(&["ru"]));
        assert!(!sealed(&["--root"]));
        assert!(!sealed(&[]));
    }
}
