//! Metric groups. Each group measures every runtime interleaved (round r
//! runs A, B, C, then round r+1 ...) so slow drifts of the host hit all
//! runtimes alike, and returns finished `Metric`s.
//!
//! Adding a group (like `shim`): a variant in `Group` (and `KNOWN`), its
//! key, and a module with a `measure(&Ctx) -> Result<Vec<Metric>>`. The
//! table, JSON and chart pick up whatever metrics a group returns.

mod batch;
mod exec;
mod lifecycle;
mod pods;
mod scale;
mod shim;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::bundle::Bundles;
use crate::error::{Error, Result};
use crate::measure::reap_strays;
use crate::results::{Metric, RuntimeResult};
use crate::runtime::Runtime;

pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// create + start + wait for exit + delete, and each phase.
    Lifecycle,
    /// Foreground `run`, and the runtime's peak RSS during it.
    Run,
    /// `exec true` into a running container.
    Exec,
    /// N `run`s back to back.
    Seq,
    /// N `run`s at once.
    Par,
    /// containerd shims: berth's against runc's (not in the default set:
    /// it starts a private containerd).
    Shim,
    /// The cost curve: N long-running containers (not in the default set).
    Scale,
    /// N containers at once through containerd, berth's shim against
    /// runc-v2 (not in the default set).
    Pods,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Lifecycle,
        Group::Run,
        Group::Exec,
        Group::Seq,
        Group::Par,
    ];

    /// Every group `--metrics` accepts.
    pub const KNOWN: [Group; 8] = [
        Group::Lifecycle,
        Group::Run,
        Group::Exec,
        Group::Seq,
        Group::Par,
        Group::Shim,
        Group::Scale,
        Group::Pods,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Group::Lifecycle => "lifecycle",
            Group::Run => "run",
            Group::Exec => "exec",
            Group::Seq => "seq",
            Group::Par => "par",
            Group::Shim => "shim",
            Group::Scale => "scale",
            Group::Pods => "pods",
        }
    }

    pub fn parse(s: &str) -> Result<Group> {
        Group::KNOWN
            .into_iter()
            .find(|g| g.key() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Group::KNOWN.iter().map(|g| g.key()).collect();
                Error::Usage(format!(
                    "unknown metric group {s:?} (known: {})",
                    all.join(",")
                ))
            })
    }

    /// Groups of single-call latencies, which the bench measures twice:
    /// back to back, and spaced (see `Ctx::pause`).
    pub fn is_latency(self) -> bool {
        matches!(self, Group::Lifecycle | Group::Run | Group::Exec)
    }

    pub fn measure(self, ctx: &Ctx) -> Result<Vec<Metric>> {
        let mut metrics = match self {
            Group::Lifecycle => lifecycle::measure_cst(ctx)?,
            Group::Run => lifecycle::measure_run(ctx)?,
            Group::Exec => exec::measure(ctx)?,
            Group::Seq => batch::measure_seq(ctx)?,
            Group::Par => batch::measure_par(ctx)?,
            Group::Shim => shim::measure(ctx)?,
            Group::Scale => scale::measure(ctx)?,
            Group::Pods => pods::measure(ctx)?,
        };
        for m in &mut metrics {
            m.finish(ctx.baseline);
        }
        Ok(metrics)
    }
}

pub struct Ctx<'a> {
    pub rts: &'a [Runtime],
    pub bundles: &'a Bundles,
    pub work: &'a Path,
    pub baseline: &'a str,
    pub runs: usize,
    pub warmup: usize,
    pub seq_count: usize,
    pub par_count: usize,
    pub batch_rounds: usize,
    pub order: Order,
    pub verbose: bool,
    /// Where containerd-shim-berth-v2 and its berth are (the shim group).
    pub shim_dir: &'a Path,
    /// Another build's shim and berth (`--shim-baseline`), if any.
    pub shim_baseline: Option<&'a Path>,
    /// Idle time before each latency sample: zero back to back, else the
    /// spaced mode. A node that starts a container now and then pays costs
    /// that back-to-back calls hide, e.g. the RCU grace period a cgroup v1
    /// migration waits for unless another one happened just before.
    pub pause: Duration,
    /// Container counts of the scale group.
    pub scale: &'a [usize],
    /// Containers the pods group starts at once.
    pub pods: usize,
}

/// In which order the runtimes take their turn within a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// A B C, A B C ...
    Fixed,
    /// A fresh permutation per round, from this seed. A runtime's latency
    /// depends on what ran just before it (a runtime following runc is
    /// several ms slower on the test VM), so a fixed order would charge
    /// that to whoever happens to come after runc.
    Shuffle(u64),
}

/// splitmix64: a tiny, well-mixed generator, enough for permutations.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The runtime indices for `round` under `order` (Fisher-Yates).
pub fn permutation(n: usize, order: Order, round: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if let Order::Shuffle(seed) = order {
        let mut st = seed ^ (round as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        for i in (1..n).rev() {
            let j = (splitmix(&mut st) % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
    }
    idx
}

impl<'a> Ctx<'a> {
    /// The runtimes (with their index) in this round's order.
    pub fn order(&self, round: usize) -> impl Iterator<Item = (usize, &'a Runtime)> {
        let rts = self.rts;
        permutation(rts.len(), self.order, round)
            .into_iter()
            .map(move |i| (i, &rts[i]))
    }

    /// Before a latency sample: idle for `pause` (nothing in spaced mode's
    /// window but the bench sleeping).
    pub fn space(&self) {
        if !self.pause.is_zero() {
            std::thread::sleep(self.pause);
        }
    }

    pub fn pid_file(&self, rt: &Runtime) -> PathBuf {
        self.work.join(format!("pid.{}", rt.name))
    }

    /// An empty metric with one result slot per runtime.
    pub fn metric(&self, key: &str, title: &str, unit: &str) -> Metric {
        Metric {
            key: key.into(),
            title: title.into(),
            unit: unit.into(),
            note: None,
            results: self
                .rts
                .iter()
                .map(|rt| RuntimeResult {
                    runtime: rt.name.clone(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    /// Progress on stderr, one character per sample, so a long run shows
    /// it is alive without disturbing the table on stdout.
    pub fn tick(&self, ok: bool) {
        if self.verbose {
            eprint!("{}", if ok { '.' } else { 'x' });
        }
    }

    /// Removes whatever a failed sample left: the container, and orphans.
    pub fn cleanup_after_failure(&self, rt: &Runtime, id: &str) {
        let _ = rt.invoke(rt.delete(id, true));
        reap_strays();
    }
}

/// After this many failures in a row a runtime sits out the rest of a
/// metric: a runtime that cannot do it at all should not stall the bench
/// for `runs × timeout`.
pub const GIVE_UP_AFTER: u32 = 3;

/// Per-runtime failure bookkeeping shared by the groups.
#[derive(Default, Clone)]
pub struct Streak {
    in_a_row: u32,
}

impl Streak {
    pub fn active(&self) -> bool {
        self.in_a_row < GIVE_UP_AFTER
    }

    pub fn record(&mut self, r: &mut RuntimeResult, outcome: &Result<()>) {
        match outcome {
            Ok(()) => self.in_a_row = 0,
            Err(e) => {
                self.in_a_row += 1;
                r.failures += 1;
                r.last_error = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_order_is_list_order() {
        assert_eq!(permutation(3, Order::Fixed, 7), vec![0, 1, 2]);
    }

    #[test]
    fn shuffle_is_a_reproducible_permutation_that_varies() {
        let mut seen = std::collections::HashSet::new();
        for round in 0..60 {
            let p = permutation(3, Order::Shuffle(42), round);
            assert_eq!(p, permutation(3, Order::Shuffle(42), round));
            let mut sorted = p.clone();
            sorted.sort();
            assert_eq!(sorted, vec![0, 1, 2]);
            seen.insert(p);
        }
        // All 6 orders of 3 runtimes show up within 60 rounds.
        assert_eq!(seen.len(), 6);
    }
}
