//! Throughput: N `run`s back to back, and N `run`s at once. One sample is
//! the wall time of a whole batch; batches of the runtimes alternate.

use std::path::PathBuf;
use std::time::Instant;

use super::{check_interrupt, Ctx, Streak};
use crate::error::{Error, Result};
use crate::measure::{reap_strays, Running};
use crate::results::Metric;
use crate::runtime::Runtime;

/// Writes one bundle per container up front so the timed batch contains
/// nothing but the runtime calls.
fn bundles(
    ctx: &Ctx,
    rt: &Runtime,
    kind: &str,
    round: usize,
    n: usize,
) -> Result<Vec<(String, PathBuf)>> {
    (0..n)
        .map(|k| {
            let id = format!("{}-{kind}-{round}-{k}", rt.name);
            let b = ctx
                .bundles
                .prepare(&rt.name, &format!("{kind}{k}"), &id, &["true"])?;
            Ok((id, b))
        })
        .collect()
}

fn seq_once(ctx: &Ctx, rt: &Runtime, round: usize) -> Result<f64> {
    let list = bundles(ctx, rt, "seq", round, ctx.seq_count)?;
    let t0 = Instant::now();
    for (id, b) in &list {
        if let Err(e) = rt.invoke(rt.run(b, id)) {
            ctx.cleanup_after_failure(rt, id);
            return Err(e);
        }
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

/// All `run`s are spawned from this thread before the first is waited for;
/// spawning costs a fraction of a millisecond each, so they overlap.
fn par_once(ctx: &Ctx, rt: &Runtime, round: usize) -> Result<f64> {
    let list = bundles(ctx, rt, "par", round, ctx.par_count)?;
    rt.reset_errlog();
    let t0 = Instant::now();
    let mut running = Vec::with_capacity(list.len());
    let mut first_err = None;
    for (id, b) in &list {
        let mut cmd = rt.run(b, id);
        match Running::spawn(&mut cmd) {
            Ok(r) => running.push((id, cmd, r)),
            Err(e) => {
                first_err.get_or_insert(Error::io("spawn", &rt.path, e));
                break;
            }
        }
    }
    let mut failed = Vec::new();
    for (id, cmd, r) in running {
        if let Err(e) = rt.finish(&cmd, r) {
            first_err.get_or_insert(e);
            failed.push(id);
        }
    }
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(e) = first_err {
        for id in failed {
            ctx.cleanup_after_failure(rt, id);
        }
        return Err(e);
    }
    Ok(wall)
}

fn measure_batches(
    ctx: &Ctx,
    mut m: Metric,
    once: fn(&Ctx, &Runtime, usize) -> Result<f64>,
) -> Result<Vec<Metric>> {
    let mut streaks = vec![Streak::default(); ctx.rts.len()];
    for round in 0..ctx.batch_rounds {
        for (i, rt) in ctx.order(round) {
            if !streaks[i].active() {
                continue;
            }
            check_interrupt()?;
            let outcome = once(ctx, rt, round);
            reap_strays();
            let outcome = match outcome {
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                o => o.map(|wall| m.results[i].samples.push(wall)),
            };
            ctx.tick(outcome.is_ok());
            streaks[i].record(&mut m.results[i], &outcome);
        }
    }
    Ok(vec![m])
}

pub fn measure_seq(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mut m = ctx.metric("seq", &format!("{} sequential runs", ctx.seq_count), "ms");
    m.note = Some(format!(
        "wall time of {} foreground `run`s one after another",
        ctx.seq_count
    ));
    measure_batches(ctx, m, seq_once)
}

pub fn measure_par(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mut m = ctx.metric("par", &format!("{} parallel runs", ctx.par_count), "ms");
    m.note = Some(format!(
        "wall time from the first spawn to the last exit of {} concurrent `run`s",
        ctx.par_count
    ));
    measure_batches(ctx, m, par_once)
}
