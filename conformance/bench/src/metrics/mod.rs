//! Metric groups. Each group measures every runtime interleaved (round r
//! runs A, B, C, then round r+1 ...) so slow drifts of the host hit all
//! runtimes alike, and returns finished `Metric`s.
//!
//! Adding a group (the shim metrics will be one): a variant in `Group`, its
//! key, and a module with a `measure(&Ctx) -> Result<Vec<Metric>>`. The
//! table, JSON and chart pick up whatever metrics a group returns.

mod batch;
mod exec;
mod lifecycle;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Lifecycle,
        Group::Run,
        Group::Exec,
        Group::Seq,
        Group::Par,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Group::Lifecycle => "lifecycle",
            Group::Run => "run",
            Group::Exec => "exec",
            Group::Seq => "seq",
            Group::Par => "par",
        }
    }

    pub fn parse(s: &str) -> Result<Group> {
        Group::ALL
            .into_iter()
            .find(|g| g.key() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Group::ALL.iter().map(|g| g.key()).collect();
                Error::Usage(format!(
                    "unknown metric group {s:?} (known: {})",
                    all.join(",")
                ))
            })
    }

    pub fn measure(self, ctx: &Ctx) -> Result<Vec<Metric>> {
        let mut metrics = match self {
            Group::Lifecycle => lifecycle::measure_cst(ctx)?,
            Group::Run => lifecycle::measure_run(ctx)?,
            Group::Exec => exec::measure(ctx)?,
            Group::Seq => batch::measure_seq(ctx)?,
            Group::Par => batch::measure_par(ctx)?,
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
    pub verbose: bool,
}

impl Ctx<'_> {
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
