//! linux.seccomp alone: the checks `create` makes, then the profile compiled
//! with libseccomp and berth's ENOSYS stub into the program `load` would
//! install. The program's shape is checked; nothing is ever loaded (the
//! target asserts that this process never gets a filter).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::LinuxSeccomp;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = serde_json::from_slice::<LinuxSeccomp>(data) else {
        return;
    };
    let _ = berth::seccomp::check_exec_allowed(&s);
    if berth::seccomp::validate(&s).is_ok() {
        if let Ok(f) = berth::seccomp::compile(&s) {
            check(f.program());
            let _ = f.wants_listener();
        }
    }
    // SAFETY: prctl with integer arguments; reads this thread's mode.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    assert_eq!(mode, 0, "a seccomp filter was installed in the fuzzer");
});

/// What the kernel's checker (bpf_check_classic) refuses: an empty or too
/// long program, a jump out of it, a last instruction that is no return.
fn check(prog: &[libc::sock_filter]) {
    assert!(
        !prog.is_empty() && prog.len() <= MAX_INSNS,
        "{} instructions",
        prog.len()
    );
    let class = |c: u16| u32::from(c) & 0x07;
    let last = prog[prog.len() - 1];
    assert_eq!(class(last.code), libc::BPF_RET, "last instruction {last:?}");
    for (pc, i) in prog.iter().enumerate() {
        if class(i.code) != libc::BPF_JMP {
            continue;
        }
        let next = pc + 1;
        if u32::from(i.code) & 0xf0 == libc::BPF_JA {
            assert!(next + (i.k as usize) < prog.len(), "ja at {pc}: {i:?}");
        } else {
            assert!(
                next + usize::from(i.jt) < prog.len() && next + usize::from(i.jf) < prog.len(),
                "jump at {pc}: {i:?}"
            );
        }
    }
}
