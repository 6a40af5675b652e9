//! Classic BPF plumbing: reading libseccomp's program out, a tiny assembler
//! with forward labels for the stub berth prepends, and the seccomp(2) load.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use libc::sock_filter;
use libseccomp::ScmpFilterContext;
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::SeccompError;

/// The program libseccomp generated, exported through a memfd: unlike a
/// pipe, it cannot fill up and block this single-threaded process.
pub fn export(ctx: &ScmpFilterContext) -> Result<Vec<sock_filter>, SeccompError> {
    let fd = memfd_create(c"berth-seccomp", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| io("memfd for the BPF program", e.into()))?;
    let mut f = std::fs::File::from(fd);
    ctx.export_bpf(&f)
        .map_err(SeccompError::lib("export BPF program"))?;
    let mut bytes = Vec::new();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_end(&mut bytes))
        .map_err(|e| io("read BPF program", e))?;
    let insn = std::mem::size_of::<sock_filter>();
    if bytes.len() % insn != 0 || bytes.is_empty() {
        return Err(io(
            "read BPF program",
            std::io::Error::other(format!("{} bytes is not a program", bytes.len())),
        ));
    }
    // libseccomp writes the program in host byte order, as the kernel takes it.
    Ok(bytes
        .chunks_exact(insn)
        .map(|c| sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Install `prog` on the calling thread; returns the listener fd when
/// `flags` asks for one.
pub fn load(prog: &[sock_filter], flags: libc::c_ulong) -> Result<Option<OwnedFd>, SeccompError> {
    crate::sys::bpf::seccomp_load(prog, flags).map_err(|e| io("load filter", e))
}

fn io(ctx: &str, source: std::io::Error) -> SeccompError {
    SeccompError::Io {
        ctx: ctx.to_string(),
        source,
    }
}

/// A position in a program being assembled; only forward jumps exist in cBPF.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

enum Op {
    /// Load the 32-bit word at this offset of struct seccomp_data.
    Load(u32),
    /// Conditional jump: `cond` is BPF_JEQ, BPF_JGT or BPF_JSET against k.
    Jump {
        cond: u32,
        k: u32,
        yes: Label,
        no: Label,
    },
    Goto(Label),
    Ret(u32),
    Mark(Label),
}

#[derive(Default)]
pub struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    pub fn mark(&mut self, l: Label) {
        self.ops.push(Op::Mark(l));
    }
    pub fn load(&mut self, offset: u32) {
        self.ops.push(Op::Load(offset));
    }
    pub fn jump(&mut self, cond: u32, k: u32, yes: Label, no: Label) {
        self.ops.push(Op::Jump { cond, k, yes, no });
    }
    pub fn goto(&mut self, l: Label) {
        self.ops.push(Op::Goto(l));
    }
    pub fn ret(&mut self, v: u32) {
        self.ops.push(Op::Ret(v));
    }

    /// Resolve labels into relative offsets. Errors if a conditional jump
    /// spans more than 255 instructions, which a stub of a few arches never does.
    pub fn finish(self) -> Result<Vec<sock_filter>, SeccompError> {
        let mut at = vec![usize::MAX; self.labels];
        let mut n = 0;
        for op in &self.ops {
            match op {
                Op::Mark(l) => at[l.0] = n,
                _ => n += 1,
            }
        }
        let mut out = Vec::with_capacity(n);
        for op in &self.ops {
            let pc = out.len();
            let rel = |l: &Label| at[l.0] - (pc + 1);
            let short = |l: &Label| {
                u8::try_from(rel(l)).map_err(|_| SeccompError::Io {
                    ctx: "assemble ENOSYS stub".into(),
                    source: std::io::Error::other("jump out of range"),
                })
            };
            let code = |c: u32| c as u16;
            out.push(match op {
                Op::Mark(_) => continue,
                Op::Load(off) => insn(code(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS), 0, 0, *off),
                Op::Jump { cond, k, yes, no } => insn(
                    code(libc::BPF_JMP | cond | libc::BPF_K),
                    short(yes)?,
                    short(no)?,
                    *k,
                ),
                Op::Goto(l) => insn(code(libc::BPF_JMP | libc::BPF_JA), 0, 0, rel(l) as u32),
                Op::Ret(v) => insn(code(libc::BPF_RET | libc::BPF_K), 0, 0, *v),
            });
        }
        Ok(out)
    }
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}
