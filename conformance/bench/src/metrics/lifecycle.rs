//! Single-container latency: create+start+delete with each phase, and
//! foreground `run` with the runtime's peak RSS.

use std::fs;
use std::time::{Duration, Instant};

use super::{check_interrupt, Ctx, Streak};
use crate::error::{Error, Result};
use crate::measure::{pidfd_open, poll_exit, reap_strays, wait4, WaitError};
use crate::results::Metric;
use crate::runtime::Runtime;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Phases {
    create: Duration,
    start: Duration,
    exit: Duration,
    delete: Duration,
}

/// create, start, wait until the container's `true` has exited (reaping
/// it, as a shim would), then a plain `delete`: the same sequence for all.
fn cst_once(ctx: &Ctx, rt: &Runtime, id: &str) -> Result<Phases> {
    let bundle = ctx.bundles.prepare(&rt.name, "0", id, &["true"])?;
    let pid_file = ctx.pid_file(rt);
    let _ = fs::remove_file(&pid_file);
    let create = rt.invoke(rt.create(&bundle, id, &pid_file))?.wall;
    // Between create and start, untimed: the init blocks until start, so
    // its pid is stable and still ours to watch.
    let text = fs::read_to_string(&pid_file).map_err(|e| Error::io("read", &pid_file, e))?;
    let pid: libc::pid_t = text
        .trim()
        .parse()
        .map_err(|_| Error::Usage(format!("{}: pid file holds {text:?}", rt.name)))?;
    let pidfd = pidfd_open(pid).map_err(|e| Error::io("pidfd_open for", &pid_file, e))?;
    let start = rt.invoke(rt.start(id))?.wall;
    let t = Instant::now();
    match poll_exit(&pidfd, t + rt.timeout) {
        Ok(()) => {}
        Err(WaitError::Timeout) => {
            return Err(Error::Timeout {
                runtime: rt.name.clone(),
                cmd: format!("container {id} running `true`"),
                secs: rt.timeout.as_secs(),
            })
        }
        Err(WaitError::Io(e)) => return Err(Error::io("poll pidfd of", &pid_file, e)),
    }
    // The init is our child (we are subreaper) unless a stray sweep took it.
    let _ = wait4(pid, libc::WNOHANG);
    let exit = t.elapsed();
    let delete = rt.invoke(rt.delete(id, false))?.wall;
    Ok(Phases {
        create,
        start,
        exit,
        delete,
    })
}

pub fn measure_cst(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mut total = ctx.metric("cst", "create+start+delete", "ms");
    total.note = Some("create, start, wait for the container to exit, delete (not -f)".into());
    let mut create = ctx.metric("cst.create", "  create", "ms");
    let mut start = ctx.metric("cst.start", "  start", "ms");
    let mut delete = ctx.metric("cst.delete", "  delete", "ms");
    let mut streaks = vec![Streak::default(); ctx.rts.len()];
    for round in 0..ctx.warmup + ctx.runs {
        for (i, rt) in ctx.order(round) {
            if !streaks[i].active() {
                continue;
            }
            check_interrupt()?;
            let id = format!("{}-cst-{round}", rt.name);
            ctx.space();
            let outcome = cst_once(ctx, rt, &id);
            reap_strays();
            let outcome = match outcome {
                Ok(p) => {
                    if round >= ctx.warmup {
                        total.results[i]
                            .samples
                            .push(ms(p.create + p.start + p.exit + p.delete));
                        create.results[i].samples.push(ms(p.create));
                        start.results[i].samples.push(ms(p.start));
                        delete.results[i].samples.push(ms(p.delete));
                    }
                    Ok(())
                }
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => {
                    ctx.cleanup_after_failure(rt, &id);
                    Err(e)
                }
            };
            ctx.tick(outcome.is_ok());
            streaks[i].record(&mut total.results[i], &outcome);
        }
    }
    Ok(vec![total, create, start, delete])
}

pub fn measure_run(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mut run = ctx.metric("run", "run (foreground)", "ms");
    let mut rss = ctx.metric("rss", "peak RSS of `run`", "MiB");
    rss.note = Some(
        "ru_maxrss of the runtime process from wait4: the largest of the runtime and its \
         waited-for descendants, so it can be the container init's for runtimes that fork it"
            .into(),
    );
    let mut streaks = vec![Streak::default(); ctx.rts.len()];
    for round in 0..ctx.warmup + ctx.runs {
        for (i, rt) in ctx.order(round) {
            if !streaks[i].active() {
                continue;
            }
            check_interrupt()?;
            let id = format!("{}-run-{round}", rt.name);
            let outcome = ctx.bundles.prepare(&rt.name, "0", &id, &["true"]);
            ctx.space();
            let outcome = outcome.and_then(|b| rt.invoke(rt.run(&b, &id)));
            reap_strays();
            let outcome = match outcome {
                Ok(f) => {
                    if round >= ctx.warmup {
                        run.results[i].samples.push(ms(f.wall));
                        rss.results[i].samples.push(f.maxrss_kib as f64 / 1024.0);
                    }
                    Ok(())
                }
                Err(e) => {
                    ctx.cleanup_after_failure(rt, &id);
                    Err(e)
                }
            };
            ctx.tick(outcome.is_ok());
            streaks[i].record(&mut run.results[i], &outcome);
        }
    }
    Ok(vec![run, rss])
}
