//! The ENOSYS stub (runc's idea): a syscall newer than every syscall the
//! profile names must fail with ENOSYS, not with the default action. A
//! profile denies by default what its author knew of; a syscall it could not
//! know of (clone3, faccessat2...) must look absent, so that libc falls back
//! to the older call instead of failing with EPERM or being killed.
//!
//! libseccomp 2.5 cannot express this, so berth puts a few instructions in
//! front of its program: per audit arch, a syscall number above the highest
//! one the profile names on that arch returns ENOSYS; everything else falls
//! through to libseccomp's program unchanged.

use std::collections::BTreeMap;

use libc::sock_filter;
use libseccomp::{ScmpAction, ScmpArch, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp};

use super::arch::{arch, ARCHES};
use super::bpf::Asm;
use super::SeccompError;

/// Offsets in struct seccomp_data.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// x32 syscalls reach the kernel as x86_64 ones with this bit set.
const X32_BIT: u32 = 0x4000_0000;
const AUDIT_X86_64: u32 = Arch::ScmpArchX86_64 as u32;

/// The stub for a profile, or nothing when unknown syscalls would not be
/// denied anyway (an allowing default) or already get ENOSYS.
pub fn stub(s: &LinuxSeccomp, default: ScmpAction) -> Result<Vec<sock_filter>, SeccompError> {
    match default {
        ScmpAction::Allow | ScmpAction::Log | ScmpAction::Trace(_) => return Ok(Vec::new()),
        ScmpAction::Errno(e) if e == libc::ENOSYS => return Ok(Vec::new()),
        _ => {}
    }
    let groups = highest_by_audit_arch(s);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut a = Asm::default();
    let enosys = a.label();
    let filter = a.label();
    a.load(ARCH);
    for (audit, maxima) in &groups {
        let next = a.label();
        let body = a.label();
        a.jump(libc::BPF_JEQ, *audit, body, next);
        a.mark(body);
        a.load(NR);
        if *audit == Arch::ScmpArchS390 as u32 || *audit == Arch::ScmpArchS390x as u32 {
            // s390 multiplexes syscalls the kernel does not know through
            // number 0 (setup(2), long gone), so 0 means "unknown" there.
            let go_on = a.label();
            a.jump(libc::BPF_JEQ, 0, enosys, go_on);
            a.mark(go_on);
        }
        if *audit == AUDIT_X86_64 {
            let (native, x32) = (a.label(), a.label());
            a.jump(libc::BPF_JSET, X32_BIT, x32, native);
            a.mark(native);
            match maxima.get(&Abi::X8664) {
                Some(max) => a.jump(libc::BPF_JGT, *max, enosys, filter),
                None => a.goto(filter),
            }
            a.mark(x32);
            match maxima.get(&Abi::X32) {
                Some(max) => a.jump(libc::BPF_JGT, *max, enosys, filter),
                None => a.goto(filter),
            }
        } else {
            let max = maxima.values().max().expect("groups are never empty");
            a.jump(libc::BPF_JGT, *max, enosys, filter);
        }
        a.mark(next);
    }
    // An arch the stub does not know: libseccomp's program decides.
    a.goto(filter);
    a.mark(enosys);
    a.ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
    a.mark(filter);
    a.finish()
}

/// The two ABIs that share AUDIT_ARCH_X86_64; every other arch is `Other`.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Abi {
    X8664,
    X32,
    Other,
}

/// For each audit arch the filter covers (the configured ones and the
/// native one, which libseccomp always includes), the highest syscall
/// number the profile names, per ABI. Arches where the profile names no
/// syscall get no stub.
fn highest_by_audit_arch(s: &LinuxSeccomp) -> BTreeMap<u32, BTreeMap<Abi, u32>> {
    let native = ScmpArch::native();
    let mut arches: Vec<ScmpArch> = s
        .architectures()
        .iter()
        .flatten()
        .map(|a| arch(*a))
        .map(|a| if a == ScmpArch::Native { native } else { a })
        .collect();
    arches.push(native);
    arches.sort_unstable_by_key(|a| token(*a));
    arches.dedup();
    let names: Vec<&String> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|c| c.names())
        .collect();
    let mut out: BTreeMap<u32, BTreeMap<Abi, u32>> = BTreeMap::new();
    for a in arches {
        let Some(tok) = token(a) else { continue };
        // Negative numbers are libseccomp's pseudo-syscalls: absent on this arch.
        let max = names
            .iter()
            .filter_map(|n| ScmpSyscall::from_name_by_arch(n, a).ok())
            .map(|nr| nr.as_raw_syscall())
            .filter(|&nr| nr >= 0)
            .max();
        let Some(max) = max else { continue };
        let (audit, abi) = match a {
            ScmpArch::X32 => (AUDIT_X86_64, Abi::X32),
            ScmpArch::X8664 => (AUDIT_X86_64, Abi::X8664),
            _ => (tok, Abi::Other),
        };
        out.entry(audit).or_default().insert(abi, max as u32);
    }
    out
}

/// libseccomp's arch token, which is the kernel's AUDIT_ARCH_* value for
/// every arch but x32 (handled by the caller).
fn token(a: ScmpArch) -> Option<u32> {
    ARCHES
        .iter()
        .find(|(_, s)| *s == a)
        .map(|(oci, _)| *oci as u32)
}
