//! `exec true` into a running container. Each runtime gets one long-lived
//! container (busybox `sleep`) for the whole metric.

use std::fs;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::{check_interrupt, Ctx, Streak};
use crate::error::{Error, Result};
use crate::measure::{pidfd_open, poll_exit, reap_strays, wait4};
use crate::results::Metric;
use crate::runtime::Runtime;

/// A running target container; torn down on drop so an error anywhere
/// leaves nothing running.
struct Target<'a> {
    rt: &'a Runtime,
    id: String,
    pid: libc::pid_t,
    pidfd: OwnedFd,
}

impl<'a> Target<'a> {
    fn up(ctx: &Ctx, rt: &'a Runtime) -> Result<Target<'a>> {
        let id = format!("{}-exec", rt.name);
        let r = Self::try_up(ctx, rt, &id);
        if r.is_err() {
            ctx.cleanup_after_failure(rt, &id);
        }
        r
    }

    fn try_up(ctx: &Ctx, rt: &'a Runtime, id: &str) -> Result<Target<'a>> {
        let bundle = ctx
            .bundles
            .prepare(&rt.name, "exec", id, &["sleep", "1000000"])?;
        let pid_file = ctx.pid_file(rt);
        let _ = fs::remove_file(&pid_file);
        rt.invoke(rt.create(&bundle, id, &pid_file))?;
        let text = fs::read_to_string(&pid_file).map_err(|e| Error::io("read", &pid_file, e))?;
        let pid: libc::pid_t = text
            .trim()
            .parse()
            .map_err(|_| Error::Usage(format!("{}: pid file holds {text:?}", rt.name)))?;
        let pidfd = pidfd_open(pid).map_err(|e| Error::io("pidfd_open for", &pid_file, e))?;
        rt.invoke(rt.start(id))?;
        Ok(Target {
            rt,
            id: id.into(),
            pid,
            pidfd,
        })
    }
}

impl Drop for Target<'_> {
    fn drop(&mut self) {
        let _ = self.rt.invoke(self.rt.kill(&self.id, "KILL"));
        let _ = poll_exit(&self.pidfd, Instant::now() + Duration::from_secs(10));
        let _ = wait4(self.pid, libc::WNOHANG);
        let _ = self.rt.invoke(self.rt.delete(&self.id, true));
        reap_strays();
    }
}

pub fn measure(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mut m = ctx.metric("exec", "exec true", "ms");
    let mut targets: Vec<Option<Target>> = Vec::new();
    for (i, rt) in ctx.rts.iter().enumerate() {
        if let Some(why) = &rt.exec_missing {
            m.results[i].na = Some(why.clone());
            targets.push(None);
            continue;
        }
        match Target::up(ctx, rt) {
            Ok(t) => targets.push(Some(t)),
            Err(e) => {
                m.results[i].failures += 1;
                m.results[i].last_error = Some(format!("starting the target container: {e}"));
                targets.push(None);
            }
        }
    }
    let mut streaks = vec![Streak::default(); ctx.rts.len()];
    for round in 0..ctx.warmup + ctx.runs {
        for (i, rt) in ctx.order(round) {
            let Some(t) = &targets[i] else { continue };
            if !streaks[i].active() {
                continue;
            }
            check_interrupt()?;
            ctx.space();
            let outcome = rt.invoke(rt.exec(&t.id, &["true"]));
            reap_strays();
            let outcome = outcome.map(|f| {
                if round >= ctx.warmup {
                    m.results[i].samples.push(f.wall.as_secs_f64() * 1e3);
                }
            });
            ctx.tick(outcome.is_ok());
            streaks[i].record(&mut m.results[i], &outcome);
        }
    }
    // Tear the targets down before the next group starts timing.
    drop(targets);
    Ok(vec![m])
}
