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

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::devices::{Kind, Rule, MKNOD, READ, WRITE};
use super::{fsutil, CgroupError};

/// struct bpf_insn.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

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

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD part of union bpf_attr; the kernel zero-fills the rest.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH part of union bpf_attr.
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, initialised #[repr(C)] prefix of union
    // bpf_attr and its size is passed along; pointers inside it are valid
    // for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T as *const c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn load(insns: &[Insn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    static LICENSE: &[u8] = b"Apache-2.0\0";
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..10].copy_from_slice(b"berth_dev\0");
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = buf.len() as u32;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    let fd = bpf(BPF_PROG_LOAD, &attr)?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The last non-empty line of the verifier log, as ": <line>".
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
    let attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &attr).map_err(|e| err("attaching", e, String::new()))?;
    Ok(())
}

#[cfg(test)]
#[path = "bpf_tests.rs"]
mod tests;
