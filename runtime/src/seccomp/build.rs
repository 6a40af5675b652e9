//! Profile → libseccomp filter, with runc's semantics where the spec is
//! silent: unknown syscall names are skipped, rules whose action equals the
//! default are dropped, and several conditions on one argument become
//! separate rules (OR) because libseccomp compares each argument once per rule.

use libseccomp::{ScmpAction, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use libseccomp::{ScmpFilterAttr, ScmpSyscall};

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompArg, LinuxSeccompFilterFlag as F,
    LinuxSeccompOperator as Op, LinuxSyscall,
};

use super::arch::arch;
use super::{Filter, SeccompError};

/// Beyond this many rules libseccomp's binary-tree layout is faster to run (runc's threshold).
const TREE_THRESHOLD: usize = 32;

pub fn compile(s: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let default = action(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == ScmpAction::Notify {
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut ctx = ScmpFilterContext::new(default).map_err(SeccompError::lib("create filter"))?;
    for (i, a) in s.architectures().iter().flatten().enumerate() {
        ctx.add_arch(arch(*a))
            .map_err(SeccompError::lib(format!("architectures[{i}] {a}")))?;
    }
    // Filter flags are seccomp(2) flags, passed when berth loads the program.
    let mut flags: libc::c_ulong = 0;
    let mut wait_killable = None;
    for (i, f) in s.flags().iter().flatten().enumerate() {
        match f {
            F::SeccompFilterFlagLog => flags |= libc::SECCOMP_FILTER_FLAG_LOG,
            F::SeccompFilterFlagSpecAllow => flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagWaitKillableRecv => wait_killable = Some(i),
            // init is single-threaded: there are no threads to synchronise.
            F::SeccompFilterFlagTsync => {}
        }
    }
    let syscalls = s.syscalls().as_deref().unwrap_or_default();
    if syscalls.len() > TREE_THRESHOLD {
        // Only a speed-up; older libseccomp lacks it.
        let _ = ctx.set_filter_attr(ScmpFilterAttr::CtlOptimize, 2);
    }
    let mut notify = false;
    for (i, sc) in syscalls.iter().enumerate() {
        notify |= add_syscall(&mut ctx, i, sc, default)?;
    }
    if notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if wait_killable.is_some() {
            flags |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        }
    } else if let Some(i) = wait_killable {
        // The kernel refuses it without a listener.
        return Err(invalid(
            &format!("linux.seccomp.flags[{i}]"),
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an SCMP_ACT_NOTIFY rule",
        ));
    }
    let mut prog = super::enosys::stub(s, default)?;
    prog.extend(super::bpf::export(&ctx)?);
    Ok(Filter { prog, flags })
}

/// Add the rules of `syscalls[i]`; returns whether they notify.
fn add_syscall(
    ctx: &mut ScmpFilterContext,
    i: usize,
    sc: &LinuxSyscall,
    default: ScmpAction,
) -> Result<bool, SeccompError> {
    let field = format!("linux.seccomp.syscalls[{i}]");
    let act = action(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
    if act == default {
        return Ok(false);
    }
    if act == ScmpAction::Notify && sc.names().iter().any(|n| n == "write") {
        // The init's own writes (sync, exec fifo) would block on an agent not yet told of us.
        return Err(invalid(
            &format!("{field}.names"),
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ));
    }
    let conds = sc
        .args()
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = [0u8; 6];
    for a in sc.args().iter().flatten() {
        seen[a.index()] += 1;
    }
    let separate = seen.iter().any(|&n| n > 1);
    for name in sc.names() {
        // Unknown to this libseccomp/arch: skipped, as runc does, so one
        // profile serves many kernels.
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let ctx_of = || format!("{field}: add rule for syscall {name:?}");
        if separate {
            for c in &conds {
                ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                    .map_err(SeccompError::lib(ctx_of()))?;
            }
        } else {
            ctx.add_rule_conditional(act, nr, &conds)
                .map_err(SeccompError::lib(ctx_of()))?;
        }
    }
    Ok(act == ScmpAction::Notify)
}

fn condition(a: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare, SeccompError> {
    if a.index() > 5 {
        return Err(invalid(
            &format!("{field}.index"),
            &format!("{} is out of range: syscalls have 6 arguments", a.index()),
        ));
    }
    let (op, datum) = match a.op() {
        Op::ScmpCmpNe => (ScmpCompareOp::NotEqual, a.value()),
        Op::ScmpCmpLt => (ScmpCompareOp::Less, a.value()),
        Op::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, a.value()),
        Op::ScmpCmpEq => (ScmpCompareOp::Equal, a.value()),
        Op::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, a.value()),
        Op::ScmpCmpGt => (ScmpCompareOp::Greater, a.value()),
        // value is the mask, valueTwo what the masked argument must equal.
        Op::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(a.value()),
            a.value_two().unwrap_or(0),
        ),
    };
    Ok(ScmpArgCompare::new(a.index() as u32, op, datum))
}

/// Every action, operator and filter flag `compile` accepts: the matches
/// below are exhaustive, so these are the whole OCI enums. `berth features`
/// reports them, and a test compiles a filter with each.
pub(super) const ACTIONS: &[A] = &[
    A::ScmpActKill,
    A::ScmpActKillThread,
    A::ScmpActKillProcess,
    A::ScmpActTrap,
    A::ScmpActErrno,
    A::ScmpActNotify,
    A::ScmpActTrace,
    A::ScmpActLog,
    A::ScmpActAllow,
];
pub(super) const OPERATORS: &[Op] = &[
    Op::ScmpCmpNe,
    Op::ScmpCmpLt,
    Op::ScmpCmpLe,
    Op::ScmpCmpEq,
    Op::ScmpCmpGe,
    Op::ScmpCmpGt,
    Op::ScmpCmpMaskedEq,
];
/// With the seccomp(2) bits each asks of the kernel (TSYNC is honoured by
/// having no other threads, so it needs nothing).
pub(super) const FLAGS: &[(F, libc::c_ulong)] = &[
    (F::SeccompFilterFlagLog, libc::SECCOMP_FILTER_FLAG_LOG),
    (F::SeccompFilterFlagTsync, 0),
    (
        F::SeccompFilterFlagSpecAllow,
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    (
        F::SeccompFilterFlagWaitKillableRecv,
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
    ),
];

/// `ret_field` names errnoRet, which only ERRNO and TRACE use (runc ignores it elsewhere).
fn action(a: A, errno_ret: Option<u32>, ret_field: &str) -> Result<ScmpAction, SeccompError> {
    let ret = || -> Result<u16, SeccompError> {
        match errno_ret {
            None => Ok(libc::EPERM as u16),
            Some(v) => u16::try_from(v)
                .map_err(|_| invalid(ret_field, &format!("{v} does not fit in 16 bits"))),
        }
    };
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(ret()?.into()),
        A::ScmpActTrace => ScmpAction::Trace(ret()?),
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActNotify => ScmpAction::Notify,
        A::ScmpActAllow => ScmpAction::Allow,
    })
}

fn invalid(field: &str, msg: &str) -> SeccompError {
    SeccompError::Invalid {
        field: field.to_string(),
        msg: msg.to_string(),
    }
}
