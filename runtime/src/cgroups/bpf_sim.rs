//! A model of the device filter for the unit tests and the fuzz target: an
//! interpreter for the instructions `bpf::program` emits, and the rules'
//! intended meaning, to compare the two.

use super::bpf::{Insn, AND64_K, EXIT, JA, JNE_K, JSET_K, LDX_W, MOV64_K, MOV64_X, RSH64_K};
use super::devices::{Kind, Rule, MKNOD, READ, WRITE};

/// A tiny interpreter for the instructions `program` emits.
pub(super) fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [(access << 16) | typ, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100_000, "program loops");
        let i = p[pc];
        let (dst, src) = (usize::from(i.regs & 0xf), usize::from(i.regs >> 4));
        let imm = i64::from(i.imm) as u64;
        pc += 1;
        let target = (pc as isize + isize::from(i.off)) as usize;
        match i.code {
            LDX_W => {
                assert_eq!(src, 1, "loads only from the context");
                r[dst] = u64::from(ctx[usize::try_from(i.off / 4).unwrap()]);
            }
            MOV64_X => r[dst] = r[src],
            MOV64_K => r[dst] = imm,
            AND64_K => r[dst] &= imm,
            RSH64_K => r[dst] >>= imm,
            JA => pc = target,
            JNE_K if r[dst] != imm => pc = target,
            JSET_K if r[dst] & imm != 0 => pc = target,
            JNE_K | JSET_K => {}
            EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

/// The intended semantics, straight from the rule list.
pub(super) fn model(rs: &[Rule], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
    for bit in [MKNOD, READ, WRITE] {
        if access & u32::from(bit) == 0 {
            continue;
        }
        let hit = rs.iter().rev().find(|r| {
            r.access & bit != 0
                && match r.kind {
                    Kind::All => true,
                    Kind::Char => typ == 2,
                    Kind::Block => typ == 1,
                }
                && r.major.is_none_or(|m| m == major)
                && r.minor.is_none_or(|m| m == minor)
        });
        if hit.is_some_and(|r| !r.allow) {
            return 0;
        }
    }
    1
}
