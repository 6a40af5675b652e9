//! The `shim` group: containerd-shim-berth-v2 (driving berth) against
//! containerd-shim-runc-v2 (driving runc), under a private containerd 1.6
//! started for the group with shim/tests/containerd-up.sh.
//!
//! - `shim.run`: `ctr run --rm IMAGE true` through each shim, interleaved.
//!   This is containerd's whole path: start action, server, Create, Start,
//!   Wait, Delete, Shutdown.
//! - `shim.rss1`, `shim.pss1`: one shim with one `sleep` container, alone.
//! - `shim.rss10`, `shim.pss10`: each of 10 shims with 10 containers
//!   running (one sample per shim). PSS shares the shim's text among the
//!   running copies, so it is the cost of one more container.
//!
//! - `shim.rss10.idle`, `shim.pss10.idle`: the same shims again once every
//!   berth helper has exited (see below), the state of a node whose
//!   containers run and whose shims only wait.
//!
//! Memory is read from /proc/<shim>/smaps_rollup one second after the
//! containers started, as shim/tests/shim-mem.sh does. The shim is the
//! parent of the container's init. berth's shim sends its requests to a
//! helper process, its `berth-helper` child (shim/src/helper.rs): the
//! berth binary it starts, which exits a few seconds after the last
//! request, or in a shim built with `in-process` a fork of the shim that
//! lives as long as it. A helper's memory is added to its shim's: PSS adds
//! up exactly, RSS counts the pages the two share twice, so RSS is then an
//! upper bound. The `.idle` figures are read once no shim of the row has a
//! helper any more (at most 15 s later; a row whose helper stays is read
//! right away).
//!
//! Rows: `berth` is the default shim (no berth code; its helper is the
//! berth binary); `berth-exec` is the same shim exec'ing the `berth` binary
//! for every command (a runtime config file naming `BinaryName`), which is
//! how the choice between the two was measured.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{check_interrupt, permutation, Ctx, Streak};
use crate::error::{Error, Result};
use crate::measure::{describe_status, Running, WaitError};
use crate::results::{Metric, RuntimeResult};

const SHIM_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shim/tests");
/// The offline image builder shared by every engine test.
const ENGINES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../engines");
const IMAGE: &str = "localhost/busybox:latest";
const NS: &str = "berth-bench";
const TEN: usize = 10;

/// One side of the comparison: a row name and what `ctr run` needs.
pub(super) struct Shim {
    pub(super) row: &'static str,
    pub(super) args: Vec<String>,
    /// Whether the memory metrics include this row.
    memory: bool,
    /// Whether its shims' helpers exit when idle (so `.idle` waits for it).
    helper_idles: bool,
}

/// A private containerd for the group; stopped (tasks, mounts, cgroups,
/// state) when dropped.
pub(super) struct Containerd {
    dir: PathBuf,
    bin: PathBuf,
    sock: PathBuf,
    fifo: PathBuf,
}

fn script(name: &str) -> PathBuf {
    Path::new(SHIM_TESTS).join(name)
}

fn run_checked(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("spawn", what, e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Command {
            runtime: "shim".into(),
            cmd: what.into(),
            status: out.status.to_string(),
            stderr: err.trim().lines().last().unwrap_or("").to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Containerd {
    pub(super) fn start(
        work: &Path,
        shim_dir: &Path,
        baseline: Option<&Path>,
    ) -> Result<Containerd> {
        let dir = work.join("containerd");
        let c = Containerd {
            bin: work.join("shim-bin"),
            sock: dir.join("run/containerd.sock"),
            fifo: work.join("fifo"),
            dir,
        };
        for d in [&c.bin, &c.fifo] {
            fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
        }
        for name in ["containerd-shim-berth-v2", "berth"] {
            let (from, to) = (shim_dir.join(name), c.bin.join(name));
            fs::copy(&from, &to).map_err(|e| Error::io("copy", &from, e))?;
        }
        // The baseline's shim answers to a runtime name of its own. It runs
        // berth's code in-process: naming a BinaryName would switch it to
        // exec'ing a berth binary instead.
        if let Some(base) = baseline {
            let (from, to) = (
                base.join("containerd-shim-berth-v2"),
                c.bin.join("containerd-shim-berthbase-v2"),
            );
            fs::copy(&from, &to).map_err(|e| Error::io("copy", &from, e))?;
        }
        let img = work.join("img");
        run_checked(
            "make-busybox-image.sh",
            Command::new(Path::new(ENGINES).join("make-busybox-image.sh"))
                .env("OUT", &img)
                .stdout(Stdio::null()),
        )?;
        run_checked("containerd-up.sh start", &mut c.script("start"))?;
        c.ctr(&[
            "images".as_ref(),
            "import".as_ref(),
            img.join("busybox-oci.tar").as_os_str(),
        ])?;
        Ok(c)
    }

    fn script(&self, action: &str) -> Command {
        let mut cmd = Command::new(script("containerd-up.sh"));
        cmd.arg(action)
            .env("CTRD_DIR", &self.dir)
            .env("SHIM_BIN_DIR", &self.bin)
            .env("CGROUP_NAMES", NS)
            .stdout(Stdio::null());
        cmd
    }

    pub(super) fn ctr_cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.arg("60")
            .arg("ctr")
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", NS])
            .args(args);
        cmd
    }

    pub(super) fn ctr<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        run_checked("ctr", &mut self.ctr_cmd(args))
    }

    pub(super) fn run_args(&self, s: &Shim, detach: bool, id: &str, argv: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into()];
        a.push(if detach { "-d" } else { "--rm" }.into());
        a.extend(["--null-io".into(), "--fifo-dir".into()]);
        a.push(self.fifo.display().to_string());
        a.extend(s.args.iter().cloned());
        a.extend([IMAGE.to_string(), id.to_string()]);
        a.extend(argv.iter().map(|s| s.to_string()));
        a
    }

    /// One timed `ctr run --rm IMAGE ID true`.
    fn timed_run(&self, s: &Shim, id: &str) -> Result<f64> {
        let mut cmd = self.ctr_cmd(&self.run_args(s, false, id, &["true"]));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let running = Running::spawn(&mut cmd).map_err(|e| Error::io("spawn", "ctr", e))?;
        let show = || format!("ctr run --rm {} {id} true", s.args.join(" "));
        match running.wait(Instant::now() + Duration::from_secs(60)) {
            Ok(f) if f.status == 0 => Ok(f.wall.as_secs_f64() * 1e3),
            Ok(f) => {
                // Leave nothing for the next sample to trip over.
                let _ = self.ctr(&["tasks", "rm", "-f", id]);
                let _ = self.ctr(&["containers", "rm", id]);
                Err(Error::Command {
                    runtime: s.row.into(),
                    cmd: show(),
                    status: describe_status(f.status),
                    stderr: "(see containerd's log)".into(),
                })
            }
            Err(WaitError::Timeout) => Err(Error::Timeout {
                runtime: s.row.into(),
                cmd: show(),
                secs: 60,
            }),
            Err(WaitError::Io(e)) => Err(Error::io("wait for", "ctr", e)),
        }
    }

    /// Start `ids` as detached `sleep`s and return (RSS, PSS) in kB of each
    /// one's shim with its helper, one second later and once idle (see the
    /// module comment); the containers are removed again either way.
    fn shim_memory(&self, s: &Shim, ids: &[String]) -> Result<[Vec<(f64, f64)>; 2]> {
        let r = self.shim_memory_inner(s, ids);
        for id in ids {
            let _ = self.ctr(&["tasks", "rm", "-f", id]);
            let _ = self.ctr(&["containers", "rm", id]);
        }
        r
    }

    fn shim_memory_inner(&self, s: &Shim, ids: &[String]) -> Result<[Vec<(f64, f64)>; 2]> {
        for id in ids {
            self.ctr(&self.run_args(s, true, id, &["sleep", "100000"]))?;
        }
        std::thread::sleep(Duration::from_secs(1));
        let tasks = self.ctr(&["tasks", "ls"])?;
        let shims = ids
            .iter()
            .map(|id| {
                let pid = tasks
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    .find(|f| f.first() == Some(&id.as_str()))
                    .and_then(|f| f.get(1).map(|p| p.to_string()))
                    .ok_or_else(|| Error::Usage(format!("task {id} not listed by ctr")))?;
                parent_of(&pid)
            })
            .collect::<Result<Vec<_>>>()?;
        let read = || -> Result<Vec<(f64, f64)>> {
            shims
                .iter()
                .map(|shim| {
                    let (mut rss, mut pss) = memory_of(shim)?;
                    for helper in helpers_of(shim)? {
                        let (r, p) = memory_of(&helper)?;
                        rss += r;
                        pss += p;
                    }
                    Ok((rss, pss))
                })
                .collect()
        };
        let busy = read()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while s.helper_idles && Instant::now() < deadline {
            let mut any = false;
            for shim in &shims {
                any |= !helpers_of(shim)?.is_empty();
            }
            if !any {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok([busy, read()?])
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.script("stop").stderr(Stdio::null()).status();
    }
}

pub(super) fn parent_of(pid: &str) -> Result<String> {
    let p = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
    // Field 4, after the parenthesised command name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("{p}: no parent pid")))
}

/// The `berth-helper` children of `shim`.
pub(super) fn helpers_of(shim: &str) -> Result<Vec<String>> {
    let procs = fs::read_dir("/proc").map_err(|e| Error::io("read", "/proc", e))?;
    Ok(procs
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "berth-helper")
                && parent_of(pid).is_ok_and(|p| p == shim)
        })
        .collect())
}

pub(super) fn memory_of(pid: &str) -> Result<(f64, f64)> {
    let p = format!("/proc/{pid}/smaps_rollup");
    let text = fs::read_to_string(&p).map_err(|e| Error::io("read", &p, e))?;
    let kb = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| Error::Usage(format!("{p}: no {key}")))
    };
    Ok((kb("Rss:")?, kb("Pss:")?))
}

pub(super) fn metric(key: &str, title: &str, unit: &str, note: &str, shims: &[Shim]) -> Metric {
    Metric {
        key: key.into(),
        title: title.into(),
        unit: unit.into(),
        note: Some(note.into()),
        results: shims
            .iter()
            .map(|s| RuntimeResult {
                runtime: s.row.into(),
                ..Default::default()
            })
            .collect(),
    }
}

pub(super) fn record(r: &mut RuntimeResult, e: &Error) {
    r.failures += 1;
    r.last_error = Some(e.to_string());
}

/// A runtime config file that makes berth's shim exec the `berth` binary
/// copied next to it (see `Containerd::start`).
fn exec_config(work: &Path) -> Result<PathBuf> {
    let bin = work.join("shim-bin").join("berth");
    let p = work.join("berth-exec.toml");
    fs::write(
        &p,
        format!("BinaryName = {:?}\n", bin.display().to_string()),
    )
    .map_err(|e| Error::io("write", &p, e))?;
    Ok(p)
}

/// The runc binary runc-v2 drives: the one of `--runtimes`, else PATH's.
pub(super) fn runc(ctx: &Ctx, group: &str) -> Result<PathBuf> {
    ctx.rts
        .iter()
        .find(|r| r.name == "runc")
        .map(|r| r.path.clone())
        .or_else(|| crate::which("runc"))
        .ok_or_else(|| Error::Usage(format!("the {group} group needs runc")))
}

/// berth's shim and runc-v2, as `ctr run` arguments.
pub(super) fn berth_and_runc(runc: &Path) -> [Shim; 2] {
    [
        Shim {
            row: "berth",
            args: vec!["--runtime".into(), "io.containerd.berth.v2".into()],
            memory: true,
            helper_idles: true,
        },
        Shim {
            row: "runc",
            args: vec![
                "--runtime".into(),
                "io.containerd.runc.v2".into(),
                "--runc-binary".into(),
                runc.display().to_string(),
            ],
            memory: true,
            helper_idles: false,
        },
    ]
}

pub fn measure(ctx: &Ctx) -> Result<Vec<Metric>> {
    let runc = runc(ctx, "shim")?;
    let [berth, runc_row] = berth_and_runc(&runc);
    let mut shims = vec![
        berth,
        Shim {
            row: "berth-exec",
            args: vec![
                "--runtime".into(),
                "io.containerd.berth.v2".into(),
                "--runtime-config-path".into(),
                exec_config(ctx.work)?.display().to_string(),
            ],
            // Its shim still starts a helper it never uses; the exec
            // mode's own memory is shim-mem.sh's with BERTH_SHIM_EXEC=1.
            memory: false,
            helper_idles: true,
        },
        runc_row,
    ];
    if ctx.shim_baseline.is_some() {
        shims.push(Shim {
            row: "berth-base",
            args: vec!["--runtime".into(), "io.containerd.berthbase.v2".into()],
            memory: true,
            // Before the exec'd helper, the shim forked one for its life.
            helper_idles: false,
        });
    }
    let who = "rows: berth = containerd-shim-berth-v2 with its berth helper, berth-exec = the same shim exec'ing the berth binary, runc = containerd-shim-runc-v2 with runc, berth-base = the --shim-baseline build's shim";
    let ctrd = Containerd::start(ctx.work, ctx.shim_dir, ctx.shim_baseline)?;

    let mut run = metric(
        "shim.run",
        "shim: ctr run --rm true",
        "ms",
        &format!("containerd 1.6 end to end; {who}"),
        &shims,
    );
    let mut streaks = vec![Streak::default(); shims.len()];
    for round in 0..ctx.warmup + ctx.runs {
        for i in permutation(shims.len(), ctx.order, round) {
            check_interrupt()?;
            if !streaks[i].active() {
                continue;
            }
            let r = ctrd.timed_run(&shims[i], &format!("bench-run-{round}-{i}"));
            ctx.tick(r.is_ok());
            let res = &mut run.results[i];
            let outcome = r.map(|ms| {
                if round >= ctx.warmup {
                    res.samples.push(ms);
                }
            });
            streaks[i].record(res, &outcome);
        }
    }

    let note1 = format!("one shim with one container, nothing else running; {who}");
    let note10 = format!("each shim of {TEN} running containers; {who}");
    let mut rss1 = metric("shim.rss1", "shim alone: RSS", "kB", &note1, &shims);
    let mut pss1 = metric("shim.pss1", "shim alone: PSS", "kB", &note1, &shims);
    let mut rss10 = metric("shim.rss10", "shim of 10: RSS", "kB", &note10, &shims);
    let mut pss10 = metric("shim.pss10", "shim of 10: PSS", "kB", &note10, &shims);
    let note_idle = format!(
        "each shim of {TEN} running containers once no berth helper runs (at most 15 s later); {who}"
    );
    let mut rss10i = metric(
        "shim.rss10.idle",
        "shim of 10, idle: RSS",
        "kB",
        &note_idle,
        &shims,
    );
    let mut pss10i = metric(
        "shim.pss10.idle",
        "shim of 10, idle: PSS",
        "kB",
        &note_idle,
        &shims,
    );
    for m in [
        &mut rss1,
        &mut pss1,
        &mut rss10,
        &mut pss10,
        &mut rss10i,
        &mut pss10i,
    ] {
        for (r, s) in m.results.iter_mut().zip(&shims) {
            if !s.memory {
                r.na = Some("the same shim and helper as berth's row".into());
            }
        }
    }
    for round in 0..ctx.batch_rounds {
        for i in permutation(shims.len(), ctx.order, round) {
            check_interrupt()?;
            if !shims[i].memory {
                continue;
            }
            let ids = [format!("bench-mem1-{round}-{i}")];
            match ctrd.shim_memory(&shims[i], &ids) {
                Ok([m, _]) => {
                    rss1.results[i].samples.push(m[0].0);
                    pss1.results[i].samples.push(m[0].1);
                    ctx.tick(true);
                }
                Err(e) => {
                    record(&mut rss1.results[i], &e);
                    record(&mut pss1.results[i], &e);
                    ctx.tick(false);
                }
            }
        }
    }
    for i in permutation(shims.len(), ctx.order, 0) {
        check_interrupt()?;
        if !shims[i].memory {
            continue;
        }
        let ids: Vec<String> = (0..TEN).map(|n| format!("bench-mem10-{i}-{n}")).collect();
        match ctrd.shim_memory(&shims[i], &ids) {
            Ok([busy, idle]) => {
                for (r, p) in busy {
                    rss10.results[i].samples.push(r);
                    pss10.results[i].samples.push(p);
                }
                for (r, p) in idle {
                    rss10i.results[i].samples.push(r);
                    pss10i.results[i].samples.push(p);
                }
                ctx.tick(true);
            }
            Err(e) => {
                for m in [&mut rss10, &mut pss10, &mut rss10i, &mut pss10i] {
                    record(&mut m.results[i], &e);
                }
                ctx.tick(false);
            }
        }
    }
    drop(ctrd);
    Ok(vec![run, rss1, pss1, rss10, pss10, rss10i, pss10i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_and_memory_of_self() {
        let me = std::process::id().to_string();
        let ppid = std::os::unix::process::parent_id().to_string();
        assert_eq!(parent_of(&me).unwrap(), ppid);
        let (rss, pss) = memory_of(&me).unwrap();
        assert!(rss > 0.0 && pss > 0.0 && pss <= rss, "{rss} {pss}");
    }

    #[test]
    fn missing_process_is_a_named_error() {
        let e = parent_of("999999999").unwrap_err().to_string();
        assert!(e.starts_with("read /proc/999999999/stat:"), "{e}");
        let e = memory_of("999999999").unwrap_err().to_string();
        assert!(e.starts_with("read /proc/999999999/smaps_rollup:"), "{e}");
    }
}
