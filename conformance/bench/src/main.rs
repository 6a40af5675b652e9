//! berth-bench: berth, runc and crun side by side in one run, interleaved,
//! all inside one private mount namespace. See README.md.

mod bundle;
mod chart;
mod curves;
mod error;
mod host;
mod measure;
mod metrics;
mod ns;
mod report;
mod results;
mod runtime;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use error::{Error, Result};
use metrics::{Ctx, Group, Order, INTERRUPTED};
use results::{Metric, Report, RuntimeInfo, Settings, SCHEMA};
use runtime::Runtime;

const DEFAULT_OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/results/latest.json");

#[derive(Parser, Debug)]
#[command(name = "berth-bench", version, args_conflicts_with_subcommands = true)]
/// Benchmark OCI runtimes side by side (run as root).
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print a results file as a text bar chart.
    Chart {
        /// Results file (default: the latest run's).
        #[arg(default_value = DEFAULT_OUT)]
        file: PathBuf,
        /// Also write the chart as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Write the scale group's cost curves as SVG to this file.
        #[arg(long)]
        curves: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Measured rounds per latency metric.
    #[arg(long)]
    runs: Option<usize>,
    /// Unmeasured rounds before them.
    #[arg(long)]
    warmup: Option<usize>,
    /// Runtimes as NAME=PATH,... (default: berth next to this binary, runc, crun).
    #[arg(long, value_delimiter = ',')]
    runtimes: Vec<String>,
    /// Runtime the ratios are relative to (default: the first).
    #[arg(long)]
    baseline: Option<String>,
    /// Metric groups to run (lifecycle,run,exec,seq,par,shim,scale,pods;
    /// default all but shim, scale and pods).
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// Also run the shim group: containerd-shim-berth-v2 against
    /// containerd-shim-runc-v2 under a private containerd.
    #[arg(long)]
    shim: bool,
    /// Directory with containerd-shim-berth-v2 and berth (default: this
    /// binary's directory).
    #[arg(long)]
    shim_dir: Option<PathBuf>,
    /// Another build's containerd-shim-berth-v2 (in-process), measured in
    /// the shim group as the row `berth-base` (a before/after in one run).
    #[arg(long)]
    shim_baseline: Option<PathBuf>,
    /// Containers per sequential batch.
    #[arg(long)]
    seq: Option<usize>,
    /// Containers per parallel batch.
    #[arg(long)]
    par: Option<usize>,
    /// Samples of each batch metric.
    #[arg(long)]
    batch_rounds: Option<usize>,
    /// Runtime order within a round: a new shuffle each round, or fixed
    /// (list order).
    #[arg(long, value_parser = ["shuffle", "fixed"], default_value = "shuffle")]
    order: String,
    /// Seed of the shuffle (default: from the clock; recorded in the results).
    #[arg(long)]
    seed: Option<u64>,
    /// Fewer rounds, for a smoke run (explicit flags still win).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON results.
    #[arg(long, default_value = DEFAULT_OUT)]
    out: PathBuf,
    /// Static busybox the rootfs is built from.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Runtime whose `spec` template is the config (default: runc if listed).
    #[arg(long)]
    spec_from: Option<String>,
    /// Spaced mode: milliseconds of idle time before each sample of the
    /// latency groups (lifecycle, run, exec), measured after their
    /// back-to-back pass and reported next to it; 0 turns it off.
    #[arg(long, value_name = "MS", default_value_t = 150)]
    space: u64,
    /// Container counts N of the scale group (--metrics scale).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100])]
    scale: Vec<usize>,
    /// Containers the pods group starts at once through containerd.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pods: usize,
    /// Seconds any single runtime call may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Directory for the bench's tmpfs work dir.
    #[arg(long, default_value = "/tmp")]
    tmp: PathBuf,
    /// No progress dots on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Some(Cmd::Chart { file, svg, curves }) => {
            chart(&file, svg.as_deref(), curves.as_deref()).map(|()| true)
        }
        None => bench(cli.bench),
    };
    match r {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("berth-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn chart(file: &Path, svg: Option<&Path>, curves: Option<&Path>) -> Result<()> {
    let text = fs::read(file).map_err(|e| Error::io("read", file, e))?;
    let rep: Report = serde_json::from_slice(&text).map_err(|source| Error::Json {
        path: file.into(),
        source,
    })?;
    print!("{}", chart::text(&rep));
    if let Some(out) = svg {
        fs::write(out, chart::svg(&rep)).map_err(|e| Error::io("write", out, e))?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(out) = curves {
        let Some(text) = curves::svg(&rep) else {
            return Err(Error::Usage(format!(
                "{}: no scale group results to draw curves from",
                file.display()
            )));
        };
        fs::write(out, text).map_err(|e| Error::io("write", out, e))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// Looks a binary up in PATH and the usual sbin/bin directories (a root
/// shell's PATH may lack /usr/sbin, where Debian puts runc).
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn runtime_list(spec: &[String]) -> Result<Vec<(String, PathBuf)>> {
    if spec.is_empty() {
        let berth = std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.join("berth")))
            .filter(|p| p.is_file())
            .or_else(|| which("berth"));
        let mut list = Vec::new();
        for (name, path) in [
            ("berth", berth),
            ("runc", which("runc")),
            ("crun", which("crun")),
        ] {
            match path {
                Some(p) => list.push((name.to_string(), p)),
                None => eprintln!("berth-bench: {name} not found, left out"),
            }
        }
        return Ok(list);
    }
    let mut list: Vec<(String, PathBuf)> = Vec::new();
    for s in spec {
        let (name, path) = s
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(|| Error::Usage(format!("--runtimes entry {s:?} is not NAME=PATH")))?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(Error::Usage(format!(
                "runtime name {name:?}: use [A-Za-z0-9_-]"
            )));
        }
        if list.iter().any(|(n, _)| n == name) {
            return Err(Error::Usage(format!("runtime name {name:?} given twice")));
        }
        let p = which(path)
            .filter(|_| !path.contains('/'))
            .unwrap_or_else(|| path.into());
        let p = fs::canonicalize(&p).map_err(|e| Error::io("runtime binary", &p, e))?;
        list.push((name.into(), p));
    }
    Ok(list)
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn catch_signals() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { sigaction(sig, &act) }.map_err(|e| Error::sys(format!("sigaction({sig})"), e))?;
    }
    Ok(())
}

/// Each back-to-back latency metric followed by its spaced twin (key
/// `KEY@spaced`); spaced metrics in other units (peak RSS) are dropped.
fn side_by_side(b2b: Vec<Metric>, spaced: Vec<Metric>, ms: u64) -> Vec<Metric> {
    let mut out = Vec::new();
    for m in b2b {
        let twin = spaced.iter().find(|s| s.key == m.key && s.unit == "ms");
        let twin = twin.cloned().map(|mut s| {
            s.key = format!("{}@spaced", s.key);
            s.title = format!("{} ({ms} ms apart)", s.title);
            s.note = None;
            s
        });
        out.push(m);
        out.extend(twin);
    }
    out
}

/// Runs the benchmark; Ok(false) when some samples failed (results are
/// still written).
fn bench(a: BenchArgs) -> Result<bool> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Usage(
            "runtimes need root: run berth-bench as root".into(),
        ));
    }
    let pick = |explicit: Option<usize>, quick: usize, normal: usize| {
        explicit.unwrap_or(if a.quick { quick } else { normal })
    };
    let (runs, warmup) = (pick(a.runs, 5, 30), pick(a.warmup, 1, 2));
    let (seq_count, par_count, batch_rounds) = (
        pick(a.seq, 20, 100),
        pick(a.par, 20, 20),
        pick(a.batch_rounds, 1, 3),
    );
    if runs == 0 || seq_count == 0 || par_count == 0 {
        return Err(Error::Usage(
            "--runs, --seq and --par must be at least 1".into(),
        ));
    }
    let mut groups: Vec<Group> = if a.metrics.is_empty() {
        Group::ALL.to_vec()
    } else {
        a.metrics
            .iter()
            .map(|s| Group::parse(s))
            .collect::<Result<_>>()?
    };
    if a.shim && !groups.contains(&Group::Shim) {
        groups.push(Group::Shim);
    }
    let shim_dir = match &a.shim_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| Some(e.parent()?.to_path_buf()))
            .unwrap_or_default(),
    };
    let needs_shim = groups
        .iter()
        .any(|g| matches!(g, Group::Shim | Group::Pods));
    if needs_shim && !shim_dir.join("containerd-shim-berth-v2").is_file() {
        return Err(Error::Usage(format!(
            "the shim and pods groups need containerd-shim-berth-v2 in {} (--shim-dir)",
            shim_dir.display()
        )));
    }
    if let Some(d) = &a.shim_baseline {
        if !d.join("containerd-shim-berth-v2").is_file() {
            return Err(Error::Usage(format!(
                "--shim-baseline {} must hold containerd-shim-berth-v2",
                d.display()
            )));
        }
    }
    let order = match a.order.as_str() {
        "fixed" => Order::Fixed,
        _ => Order::Shuffle(a.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })),
    };
    let list = runtime_list(&a.runtimes)?;
    if list.is_empty() {
        return Err(Error::Usage("no runtime to benchmark".into()));
    }
    let baseline = a.baseline.clone().unwrap_or_else(|| list[0].0.clone());
    if !list.iter().any(|(n, _)| *n == baseline) {
        return Err(Error::Usage(format!(
            "baseline {baseline:?} is not among the runtimes"
        )));
    }
    let spec_name = a
        .spec_from
        .clone()
        .or_else(|| list.iter().any(|(n, _)| n == "runc").then(|| "runc".into()))
        .unwrap_or_else(|| baseline.clone());
    let spec_path = list
        .iter()
        .find(|(n, _)| *n == spec_name)
        .map(|(_, p)| p.clone())
        .ok_or_else(|| {
            Error::Usage(format!(
                "--spec-from {spec_name:?} is not among the runtimes"
            ))
        })?;
    let busybox = fs::canonicalize(&a.busybox).map_err(|e| Error::io("busybox", &a.busybox, e))?;
    let out = std::path::absolute(&a.out).map_err(|e| Error::io("output path", &a.out, e))?;

    let layout = ns::cgroup_layout();
    catch_signals()?;
    let detached = ns::enter_private_mount_ns()?;
    ns::become_subreaper()?;
    let work = ns::WorkDir::create(&a.tmp)?;
    let cgroup = ns::CgroupParent::new();
    let rootfs = work.path().join("rootfs");
    bundle::build_rootfs(&busybox, &rootfs)?;
    let timeout = Duration::from_secs(a.timeout);
    let rts = list
        .iter()
        .map(|(n, p)| Runtime::new(n, p, work.path(), timeout))
        .collect::<Result<Vec<_>>>()?;
    let bundles = bundle::Bundles::new(
        work.path().join("bundles"),
        &rootfs,
        (&spec_name, &spec_path),
        &cgroup.name,
    )?;
    let ctx = Ctx {
        rts: &rts,
        bundles: &bundles,
        work: work.path(),
        baseline: &baseline,
        runs,
        warmup,
        seq_count,
        par_count,
        batch_rounds,
        order,
        verbose: !a.quiet,
        shim_dir: &shim_dir,
        shim_baseline: a.shim_baseline.as_deref(),
        pause: Duration::ZERO,
        scale: &a.scale,
        pods: a.pods,
    };
    let spaced = Ctx {
        pause: Duration::from_millis(a.space),
        ..ctx
    };
    let mut measured = Vec::new();
    let mut outcome = Ok(());
    for g in &groups {
        if !a.quiet {
            eprint!("{:<10}", g.key());
        }
        let mut r = g.measure(&ctx);
        if g.is_latency() && a.space > 0 {
            if let Ok(b2b) = r {
                if !a.quiet {
                    eprint!(" spaced ");
                }
                r = g.measure(&spaced).map(|s| side_by_side(b2b, s, a.space));
            }
        }
        if !a.quiet {
            eprintln!();
        }
        match r {
            Ok(m) => measured.extend(m),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // Whatever a failure or ^C left behind goes before the cgroup parent
    // and the work dir are removed (guards drop in reverse order).
    for rt in &rts {
        for id in rt.leftovers() {
            let _ = rt.invoke(rt.delete(&id, true));
        }
    }
    measure::reap_strays();
    outcome?;

    let (unix_time, timestamp) = host::now();
    let report = Report {
        schema: SCHEMA,
        timestamp,
        unix_time,
        host: host::host(layout, detached),
        runtimes: rts
            .iter()
            .map(|r| RuntimeInfo {
                name: r.name.clone(),
                path: r.path.display().to_string(),
                version: r.version.clone(),
                exec: r.exec_missing.is_none(),
            })
            .collect(),
        baseline,
        settings: Settings {
            runs,
            warmup,
            seq_count,
            par_count,
            batch_rounds,
            order: match order {
                Order::Fixed => "fixed".into(),
                Order::Shuffle(seed) => format!("shuffled per round (seed {seed})"),
            },
            spec_from: bundles.spec_from.clone(),
            config_patches: bundles.patches.clone(),
            groups: groups.iter().map(|g| g.key().to_string()).collect(),
            space_ms: a.space,
        },
        metrics: measured,
    };
    print!("{}", report::table(&report));
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let json = serde_json::to_vec_pretty(&report).expect("the report always serializes");
    fs::write(&out, json).map_err(|e| Error::io("write", &out, e))?;
    eprintln!("wrote {}", out.display());
    Ok(report
        .metrics
        .iter()
        .flat_map(|m| &m.results)
        .all(|r| r.failures == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(key: &str, unit: &str) -> Metric {
        Metric {
            key: key.into(),
            title: key.into(),
            unit: unit.into(),
            note: Some("n".into()),
            results: Vec::new(),
        }
    }

    #[test]
    fn spaced_twins_follow_their_back_to_back_rows() {
        let b2b = vec![metric("run", "ms"), metric("rss", "MiB")];
        let spaced = vec![metric("run", "ms"), metric("rss", "MiB")];
        let keys: Vec<_> = side_by_side(b2b, spaced, 150)
            .into_iter()
            .map(|m| (m.key, m.title))
            .collect();
        assert_eq!(
            keys,
            [
                ("run".to_string(), "run".to_string()),
                ("run@spaced".to_string(), "run (150 ms apart)".to_string()),
                ("rss".to_string(), "rss".to_string()),
            ]
        );
    }
}
