//! The cost curve: how a runtime's costs grow with the number of containers
//! on the node. For each N (`--scale`), each runtime in turn starts N
//! long-running containers (busybox `sleep`), then measures `state` of one
//! of them and `list`, reads the memory the containers hold, and deletes
//! them all. Only one runtime's containers are up at a time.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::{check_interrupt, Ctx};
use crate::error::{Error, Result};
use crate::measure::reap_strays;
use crate::results::Metric;
use crate::runtime::Runtime;

/// Samples of `state` and of `list` at each N.
const STATE_SAMPLES: usize = 10;
const LIST_SAMPLES: usize = 5;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The metrics of one N, one result slot per runtime.
struct AtN {
    create: Metric,
    state: Metric,
    list: Metric,
    root: Metric,
    init: Metric,
    delete: Metric,
}

impl AtN {
    fn new(ctx: &Ctx, n: usize) -> AtN {
        let m = |key: &str, title: &str, unit: &str| {
            ctx.metric(
                &format!("scale.{key}@{n}"),
                &format!("{title}, N={n}"),
                unit,
            )
        };
        let mut root = m("root", "state on disk per container", "KiB");
        root.note = Some("bytes under the runtime's --root divided by N".into());
        let mut init = m("init", "RSS of a container's init", "KiB");
        init.note = Some(
            "the same busybox sleep for every runtime, plus whatever the runtime leaves in it"
                .into(),
        );
        AtN {
            create: m("create", "create+start per container", "ms"),
            state: m("state", "state of one container", "ms"),
            list: m("list", "list", "ms"),
            root,
            init,
            delete: m("delete", "delete -f per container", "ms"),
        }
    }

    fn into_vec(self) -> Vec<Metric> {
        vec![
            self.create,
            self.state,
            self.list,
            self.root,
            self.init,
            self.delete,
        ]
    }
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(p) else { return 0 };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn rss_kib(pid: &str) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Starts N containers, measures, and deletes them (also on error).
fn one(ctx: &Ctx, rt: &Runtime, i: usize, n: usize, at: &mut AtN) -> Result<()> {
    let mut ids = Vec::with_capacity(n);
    let r = up_and_measure(ctx, rt, i, n, at, &mut ids);
    for id in &ids {
        match rt.invoke(rt.delete(id, true)) {
            Ok(f) if r.is_ok() => at.delete.results[i].samples.push(ms(f.wall)),
            Ok(_) => {}
            Err(e) => {
                at.delete.results[i].failures += 1;
                at.delete.results[i].last_error = Some(e.to_string());
            }
        }
        reap_strays();
    }
    r
}

fn up_and_measure(
    ctx: &Ctx,
    rt: &Runtime,
    i: usize,
    n: usize,
    at: &mut AtN,
    ids: &mut Vec<String>,
) -> Result<()> {
    let pid_file = ctx.pid_file(rt);
    let mut pids = Vec::with_capacity(n);
    for k in 0..n {
        check_interrupt()?;
        let id = format!("{}-scale{n}-{k}", rt.name);
        let bundle = ctx
            .bundles
            .prepare(&rt.name, "scale", &id, &["sleep", "1000000"])?;
        let _ = fs::remove_file(&pid_file);
        ids.push(id.clone());
        let c = rt.invoke(rt.create(&bundle, &id, &pid_file))?;
        let s = rt.invoke(rt.start(&id))?;
        at.create.results[i].samples.push(ms(c.wall + s.wall));
        let pid = fs::read_to_string(&pid_file).map_err(|e| Error::io("read", &pid_file, e))?;
        pids.push(pid.trim().to_string());
        if k % 50 == 49 {
            ctx.tick(true);
        }
    }
    let probe = &ids[n / 2];
    for _ in 0..STATE_SAMPLES {
        let f = rt.invoke(rt.state(probe))?;
        at.state.results[i].samples.push(ms(f.wall));
    }
    for _ in 0..LIST_SAMPLES {
        let f = rt.invoke(rt.list())?;
        at.list.results[i].samples.push(ms(f.wall));
    }
    at.root.results[i]
        .samples
        .push(dir_bytes(&rt.root) as f64 / 1024.0 / n as f64);
    at.init.results[i]
        .samples
        .extend(pids.iter().filter_map(|p| rss_kib(p)));
    Ok(())
}

pub fn measure(ctx: &Ctx) -> Result<Vec<Metric>> {
    let mut out = Vec::new();
    for (round, &n) in ctx.scale.iter().enumerate() {
        let mut at = AtN::new(ctx, n);
        for (i, rt) in ctx.order(round) {
            match one(ctx, rt, i, n, &mut at) {
                Ok(()) => {}
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => {
                    at.create.results[i].failures += 1;
                    at.create.results[i].last_error = Some(e.to_string());
                }
            }
            ctx.tick(true);
        }
        out.extend(at.into_vec());
    }
    Ok(out)
}
