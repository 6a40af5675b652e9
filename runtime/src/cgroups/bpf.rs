//! cgroup v2 device control: the rules compiled into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, loaded and attached with raw
//! bpf(2) (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`, so programs on
//! ancestors keep applying too).
//!
//! Semantics, per requested access bit (mknod, read, write): the last rule
//! that matches the device and carries that bit decides; with no such rule
//! the bit is allowed, as on a fresh v1 cgroup. A request is allowed when
//! every bit it asks for is. The kernel only ever asks for mknod alone or
//! for read and/or write.
//!
//! Program shape (r1 = struct bpf_cgroup_dev_ctx *):
//! ```text
//!   r2 = access_type; r3 = r2 & 0xffff (type); r2 >>= 16 (access)
//!   r4 = major; r5 = minor
//!   for bit in m, r, w:
//!     if !(r2 & bit) goto next_bit
//!     for rule in reverse, if it has bit:
//!       if r3 != type / r4 != major / r5 != minor goto next_rule
//!       allow: goto next_bit | deny: return 0
//!   next_bit: ...
//!   return 1
//! ```

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::devices::{Kind, Rule, MKNOD, READ, WRITE};
use super::{fsutil, CgroupError};

pub(super) use crate::sys::bpf::Insn;

pub(super) const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(super) const MOV64_X: u8 = 0xbf;
pub(super) const MOV64_K: u8 = 0xb7;
pub(super) const AND64_K: u8 = 0x57;
pub(super) const RSH64_K: u8 = 0x77;
pub(super) const JA: u8 = 0x05;
pub(super) const JNE_K: u8 = 0x55;
pub(super) const JSET_K: u8 = 0x45;
pub(super) const EXIT: u8 = 0x95;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    /// (index of a jump, label it targets)
    fixups: Vec<(usize, usize)>,
    labels: Vec<usize>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        });
    }

    fn label(&mut self) -> usize {
        self.labels.push(usize::MAX);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        self.labels[label] = self.insns.len();
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, label: usize) {
        self.fixups.push((self.insns.len(), label));
        self.op(code, dst, 0, 0, imm);
    }

    /// None when a jump spans more than eBPF's 16-bit offset reaches.
    fn finish(mut self) -> Option<Vec<Insn>> {
        for (at, label) in self.fixups {
            let off = self.labels[label] as isize - at as isize - 1;
            self.insns[at].off = i16::try_from(off).ok()?;
        }
        Some(self.insns)
    }
}

/// The filter for `rules`. A typical rule list makes a few hundred
/// instructions; some thousands of rules make jumps too long for eBPF,
/// which is an error naming the field rather than a program that wraps.
pub(super) fn program(rules: &[Rule]) -> Result<Vec<Insn>, CgroupError> {
    let mut a = Asm::default();
    a.op(LDX_W, R2, R1, 0, 0);
    a.op(MOV64_X, R3, R2, 0, 0);
    a.op(AND64_K, R3, 0, 0, 0xffff);
    a.op(RSH64_K, R2, 0, 0, 16);
    a.op(LDX_W, R4, R1, 4, 0);
    a.op(LDX_W, R5, R1, 8, 0);
    for bit in [MKNOD, READ, WRITE] {
        let next_bit = a.label();
        let check = a.label();
        a.jump(JSET_K, R2, bit.into(), check);
        a.jump(JA, 0, 0, next_bit);
        a.place(check);
        for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let next_rule = a.label();
            let kind = match r.kind {
                Kind::All => None,
                Kind::Char => Some(DEV_CHAR),
                Kind::Block => Some(DEV_BLOCK),
            };
            // A number above i32::MAX sign-extends and so never equals a
            // (zero-extended) device number: such a rule never matches,
            // which is right since no device has it.
            let conds = [
                (R3, kind),
                (R4, r.major.map(|n| n as i32)),
                (R5, r.minor.map(|n| n as i32)),
            ];
            let mut unconditional = true;
            for (reg, val) in conds {
                if let Some(v) = val {
                    a.jump(JNE_K, reg, v, next_rule);
                    unconditional = false;
                }
            }
            if !r.allow {
                a.op(MOV64_K, R0, 0, 0, 0);
                a.op(EXIT, 0, 0, 0, 0);
            } else if !unconditional {
                a.jump(JA, 0, 0, next_bit);
            }
            a.place(next_rule);
            // Earlier rules are shadowed (and would be unreachable code,
            // which the verifier rejects).
            if unconditional {
                break;
            }
        }
        a.place(next_bit);
    }
    a.op(MOV64_K, R0, 0, 0, 1);
    a.op(EXIT, 0, 0, 0, 0);
    a.finish().ok_or_else(|| CgroupError::Invalid {
        field: "linux.resources.devices".into(),
        reason: format!(
            "{} device rules are more than an eBPF device filter can hold",
            rules.len()
        ),
    })
}

fn load(insns: &[Insn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    crate::sys::bpf::load_device_program(insns, log)
}

/// The last non-empty line of the verifier log, as `": <line>"`.
fn last_log_line(insns: &[Insn]) -> String {
    let mut buf = vec![0u8; 1 << 16];
    if load(insns, Some(&mut buf)).is_ok() {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end])
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(String::new, |l| format!(": {}", l.trim()))
}

/// Load `insns` and attach them to the cgroup directory `dir`. The attachment
/// keeps the program alive; our fds are closed on return.
pub(super) fn attach(dir: &Path, insns: &[Insn]) -> Result<(), CgroupError> {
    let err = |op, source, log| CgroupError::Bpf {
        op,
        path: dir.to_owned(),
        source,
        log,
    };
    let prog = load(insns, None).map_err(|e| {
        let log = match e.raw_os_error() {
            Some(libc::EINVAL | libc::EACCES) => last_log_line(insns),
            _ => String::new(),
        };
        err("loading", e, log)
    })?;
    let cg = fsutil::open_dir(dir).map_err(|e| err("opening the cgroup", e, String::new()))?;
    crate::sys::bpf::attach_device_program(cg.as_fd(), prog.as_fd())
        .map_err(|e| err("attaching", e, String::new()))?;
    Ok(())
}

#[cfg(test)]
#[path = "bpf_tests.rs"]
mod tests;
