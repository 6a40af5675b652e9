//! The `pods` group: N containers started at once through containerd, each
//! with its own shim as every pod has one, berth's shim against runc-v2
//! (under the shim group's private containerd 1.6).
//!
//! For each shim in turn (order shuffled per round), all N `ctr run -d
//! IMAGE ID sleep` are spawned at once, then:
//!
//! | key | what one sample is |
//! |---|---|
//! | `pods.total` | wall time from the first spawn to the last `ctr` exit |
//! | `pods.each` | one `ctr run -d`, from its spawn to its exit (N samples) |
//! | `pods.rss`, `pods.pss` | RSS and PSS of all N shims together (helpers included), in MiB, one second after the last start |
//! | `pods.delete` | wall time of N `ctr tasks rm -f` spawned at once |
//!
//! PSS adds up to the memory the shims cost the node; RSS counts shared
//! pages once per shim. The containers (the same busybox `sleep` for both)
//! and containerd's own bookkeeping are not counted.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::shim::{
    berth_and_runc, helpers_of, memory_of, metric, parent_of, record, runc, Containerd, Shim,
};
use super::{check_interrupt, permutation, Ctx};
use crate::error::{Error, Result};
use crate::measure::pidfd_open;
use crate::results::Metric;

/// What one start of N gave.
struct Round {
    total_ms: f64,
    each_ms: Vec<f64>,
    rss_mib: f64,
    pss_mib: f64,
    delete_ms: f64,
}

/// Spawn every command at once and wait for all: the wall time of the
/// whole and of each (from its own spawn). A command that fails or is
/// killed by `ctr_cmd`'s timeout is an error naming it. Only these
/// children are waited for (through pidfds), never other ones.
fn all_at_once(cmds: Vec<(String, std::process::Command)>) -> Result<(f64, Vec<f64>)> {
    let t0 = Instant::now();
    let mut running: Vec<(String, Instant, std::process::Child, OwnedFd)> = Vec::new();
    let mut first_err = None;
    for (what, mut cmd) in cmds {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let started = Instant::now();
        match cmd.spawn() {
            Ok(mut c) => match pidfd_open(c.id() as i32) {
                Ok(fd) => running.push((what, started, c, fd)),
                Err(e) => {
                    let _ = c.wait();
                    first_err.get_or_insert(Error::io("pidfd_open", &what, e));
                }
            },
            Err(e) => {
                first_err.get_or_insert(Error::io("spawn", &what, e));
            }
        }
    }
    let mut each = Vec::with_capacity(running.len());
    while !running.is_empty() {
        let mut pfds: Vec<libc::pollfd> = running
            .iter()
            .map(|r| libc::pollfd {
                fd: r.3.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a valid array of pollfds and its length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 1000) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::io("poll", "ctr", e));
            }
        }
        check_interrupt()?;
        let now = Instant::now();
        let done: Vec<usize> = (0..pfds.len())
            .rev()
            .filter(|&k| pfds[k].revents != 0)
            .collect();
        for k in done {
            let (what, started, mut child, _) = running.swap_remove(k);
            let status = child.wait().map_err(|e| Error::io("wait for", &what, e))?;
            each.push(now.duration_since(started).as_secs_f64() * 1e3);
            if !status.success() {
                first_err.get_or_insert(Error::Command {
                    runtime: "pods".into(),
                    cmd: what,
                    status: status.to_string(),
                    stderr: "(see containerd's log)".into(),
                });
            }
        }
    }
    let total = t0.elapsed().as_secs_f64() * 1e3;
    match first_err {
        Some(e) => Err(e),
        None => Ok((total, each)),
    }
}

/// RSS and PSS (kB) of the shims (and their helpers) of `ids`.
fn shims_memory(ctrd: &Containerd, ids: &[String]) -> Result<(f64, f64)> {
    let tasks = ctrd.ctr(&["tasks", "ls"])?;
    let mut shims: Vec<String> = Vec::new();
    for id in ids {
        let pid = tasks
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&id.as_str()))
            .and_then(|f| f.get(1).map(|p| p.to_string()))
            .ok_or_else(|| Error::Usage(format!("task {id} not listed by ctr")))?;
        let shim = parent_of(&pid)?;
        if !shims.contains(&shim) {
            shims.push(shim);
        }
    }
    let (mut rss, mut pss) = (0.0, 0.0);
    for shim in &shims {
        for p in std::iter::once(shim.clone()).chain(helpers_of(shim)?) {
            let (r, q) = memory_of(&p)?;
            rss += r;
            pss += q;
        }
    }
    Ok((rss, pss))
}

fn one_round(ctrd: &Containerd, s: &Shim, n: usize, tag: &str) -> Result<Round> {
    let ids: Vec<String> = (0..n).map(|k| format!("pod-{tag}-{k}")).collect();
    let r = start_measure_delete(ctrd, s, &ids);
    // Whatever a failure left (all at once, then the records).
    let _ = all_at_once(
        ids.iter()
            .map(|id| (id.clone(), ctrd.ctr_cmd(&["tasks", "rm", "-f", id])))
            .collect(),
    );
    let _ = all_at_once(
        ids.iter()
            .map(|id| (id.clone(), ctrd.ctr_cmd(&["containers", "rm", id])))
            .collect(),
    );
    r
}

fn start_measure_delete(ctrd: &Containerd, s: &Shim, ids: &[String]) -> Result<Round> {
    let starts = ids
        .iter()
        .map(|id| {
            let args = ctrd.run_args(s, true, id, &["sleep", "100000"]);
            (format!("ctr run -d {id}"), ctrd.ctr_cmd(&args))
        })
        .collect();
    let (total_ms, each_ms) = all_at_once(starts)?;
    std::thread::sleep(Duration::from_secs(1));
    let (rss, pss) = shims_memory(ctrd, ids)?;
    let deletes = ids
        .iter()
        .map(|id| {
            (
                format!("ctr tasks rm -f {id}"),
                ctrd.ctr_cmd(&["tasks", "rm", "-f", id]),
            )
        })
        .collect();
    let (delete_ms, _) = all_at_once(deletes)?;
    Ok(Round {
        total_ms,
        each_ms,
        rss_mib: rss / 1024.0,
        pss_mib: pss / 1024.0,
        delete_ms,
    })
}

pub fn measure(ctx: &Ctx) -> Result<Vec<Metric>> {
    let runc = runc(ctx, "pods")?;
    let shims = berth_and_runc(&runc);
    let n = ctx.pods;
    let ctrd = Containerd::start(ctx.work, ctx.shim_dir, None)?;
    let who = format!(
        "{n} containers started at once through containerd 1.6, one shim each; \
         rows: berth = containerd-shim-berth-v2, runc = containerd-shim-runc-v2 with runc"
    );
    let mut total = metric(
        "pods.total",
        &format!("{n} at once: all started"),
        "ms",
        &who,
        &shims,
    );
    let mut each = metric(
        "pods.each",
        &format!("{n} at once: each ctr run -d"),
        "ms",
        &who,
        &shims,
    );
    let mut rss = metric(
        "pods.rss",
        &format!("{n} at once: RSS of all shims"),
        "MiB",
        &who,
        &shims,
    );
    let mut pss = metric(
        "pods.pss",
        &format!("{n} at once: PSS of all shims"),
        "MiB",
        &who,
        &shims,
    );
    let mut delete = metric(
        "pods.delete",
        &format!("{n} at once: tasks rm -f of all"),
        "ms",
        &who,
        &shims,
    );
    for round in 0..ctx.batch_rounds {
        for i in permutation(shims.len(), ctx.order, round) {
            check_interrupt()?;
            match one_round(&ctrd, &shims[i], n, &format!("{round}-{i}")) {
                Ok(r) => {
                    total.results[i].samples.push(r.total_ms);
                    each.results[i].samples.extend(r.each_ms);
                    rss.results[i].samples.push(r.rss_mib);
                    pss.results[i].samples.push(r.pss_mib);
                    delete.results[i].samples.push(r.delete_ms);
                    ctx.tick(true);
                }
                Err(e) => {
                    for m in [&mut total, &mut each, &mut rss, &mut pss, &mut delete] {
                        record(&mut m.results[i], &e);
                    }
                    ctx.tick(false);
                }
            }
        }
    }
    drop(ctrd);
    Ok(vec![total, each, rss, pss, delete])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn all_at_once_times_each_and_names_a_failure() {
        let cmds = (0..3)
            .map(|k| {
                let mut c = Command::new("sleep");
                c.arg("0.2");
                (format!("sleep {k}"), c)
            })
            .collect();
        let (total, each) = all_at_once(cmds).unwrap();
        assert_eq!(each.len(), 3);
        assert!(each.iter().all(|&ms| ms >= 200.0), "{each:?}");
        assert!(total >= 200.0, "{total}");

        let cmds = vec![
            ("true".to_string(), Command::new("true")),
            ("false".to_string(), Command::new("false")),
        ];
        let e = all_at_once(cmds).unwrap_err().to_string();
        assert!(e.contains("false"), "{e}");
    }
}
