//! berth-conformance: runs OCI conformance scenarios against a runtime's CLI
//! and prints a per-scenario table, then "N passed, N failed, N skipped"
//! (assertions). Selecting no scenario, or checking nothing, is a failure.

mod bundle;
mod features;
mod report;
mod runtime;
mod scenarios;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;

use conformance::tap;
use report::{Outcome, Row};
use scenarios::{Case, Env};

#[derive(Parser, Debug)]
#[command(name = "berth-conformance", about = "OCI runtime conformance suite")]
struct Args {
    /// The runtime binary (default: berth next to this program).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// The static berth-check binary (default: target/conformance/berth-check).
    #[arg(long)]
    checker: Option<PathBuf>,
    /// Run only scenarios whose name contains one of these (repeatable).
    #[arg(long)]
    filter: Vec<String>,
    /// Run only the scenario of exactly this name (repeatable); an unknown
    /// name is an error.
    #[arg(long)]
    scenario: Vec<String>,
    /// List the scenarios and the features they need, then exit.
    #[arg(long)]
    list: bool,
    /// Skip scenarios needing this feature (repeatable), e.g. seccomp, hooks, apparmor.
    #[arg(long = "skip-feature")]
    skip_feature: Vec<String>,
    /// Seconds allowed for each runtime call.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// Work directory (default: a new /tmp/berth-conformance-PID).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the work directory.
    #[arg(long)]
    keep: bool,
    /// Print every failed assertion under its scenario.
    #[arg(short, long)]
    verbose: bool,
    /// Run the runtime with --systemd-cgroup: each case's cgroupsPath is
    /// `system.slice:<prefix>:<case>` (a transient scope) instead of a path.
    /// Scenarios about path forms (relative, foreign parents) do not apply.
    #[arg(long)]
    systemd_cgroup: bool,
}

/// `name` next to this program (target/<profile>/).
fn sibling(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name)).filter(|p| p.exists())
}

/// The static checker build-checker.sh writes (target/conformance/); the
/// dynamic one cargo puts next to this program would not run in a busybox rootfs.
fn static_checker() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("conformance/berth-check")).filter(|p| p.exists())
}

fn selected(a: &Args, name: &str) -> bool {
    let by_filter = a.filter.iter().any(|f| name.contains(f.as_str()));
    let by_name = a.scenario.iter().any(|s| s == name);
    (a.filter.is_empty() && a.scenario.is_empty()) || by_filter || by_name
}

fn run_one(env: &Env, a: &Args, s: &scenarios::Scenario) -> Row {
    let t0 = Instant::now();
    let why = s.features.iter().find_map(|f| {
        if a.skip_feature.iter().any(|x| x == f) {
            Some(format!("--skip-feature {f}"))
        } else {
            env.host.lacks(f)
        }
    });
    if let Some(why) = why {
        return Row {
            name: s.name.into(),
            outcome: Outcome::Skip(why),
            counts: Default::default(),
            time: t0.elapsed(),
            left: vec![],
        };
    }
    let mut case = match Case::new(env, s.name) {
        Ok(c) => c,
        Err(e) => {
            let mut counts = tap::Counts {
                failed: 1,
                ..Default::default()
            };
            counts
                .failures
                .push(format!("not ok - prepare bundle: {e}"));
            return Row {
                name: s.name.into(),
                outcome: Outcome::Fail,
                counts,
                time: t0.elapsed(),
                left: vec![],
            };
        }
    };
    (s.run)(&mut case);
    let left = case.cleanup();
    let inner = std::mem::take(&mut case.inner);
    let mut t = std::mem::replace(&mut case.t, tap::Tap::new(Vec::new()));
    let clean_so_far =
        inner.failed == 0 && tap::parse(&String::from_utf8_lossy(t_bytes(&mut t))).failed == 0;
    if clean_so_far {
        // Leftovers after a clean run are the runtime's leaks.
        t.ok(
            left.is_empty(),
            "nothing left behind (containers, mounts, cgroups)",
            left.join(", "),
        );
    }
    t.finish();
    let mut counts = tap::parse(&String::from_utf8_lossy(&t_take(t)));
    counts.plan = None;
    counts.passed += inner.passed;
    counts.failed += inner.failed;
    counts.skipped += inner.skipped;
    counts.failures.extend(inner.failures);
    let outcome = if counts.failed > 0 {
        Outcome::Fail
    } else if counts.passed == 0 {
        Outcome::Skip("nothing could be checked".into())
    } else {
        Outcome::Pass
    };
    Row {
        name: s.name.into(),
        outcome,
        counts,
        time: t0.elapsed(),
        left,
    }
}

fn t_bytes(t: &mut tap::Tap<Vec<u8>>) -> &[u8] {
    t.inner()
}

fn t_take(t: tap::Tap<Vec<u8>>) -> Vec<u8> {
    t.into_inner()
}

fn main() {
    let a = Args::parse();
    let all = scenarios::all();
    if a.list {
        for s in &all {
            println!("{:<40} {}", s.name, s.features.join(","));
        }
        return;
    }
    let Some(rt) = a.runtime.clone().or_else(|| sibling("berth")) else {
        eprintln!("berth-conformance: no --runtime given and no berth binary next to this program");
        std::process::exit(2);
    };
    let Some(checker) = a.checker.clone().or_else(static_checker) else {
        eprintln!(
            "berth-conformance: no --checker given; build it with conformance/build-checker.sh"
        );
        std::process::exit(2);
    };
    let work = a
        .workdir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/berth-conformance-{}", std::process::id())));
    let base = work.join("rootfs-base");
    let prep = std::fs::create_dir_all(work.join("state"))
        .and_then(|_| bundle::base_rootfs(&base, &checker));
    if let Err(e) = prep {
        eprintln!("berth-conformance: prepare {}: {e}", work.display());
        std::process::exit(2);
    }
    let rt = runtime::Runtime {
        bin: rt,
        root: work.join("state"),
        timeout: Duration::from_secs(a.timeout),
        scratch: work.clone(),
        systemd_cgroup: a.systemd_cgroup,
    };
    println!(
        "# runtime {} ({}), checker {}",
        rt.bin.display(),
        version(&rt.bin),
        checker.display()
    );
    let env = Env {
        rt,
        work: work.clone(),
        base_rootfs: base,
        prefix: format!("berth-conformance-{}", std::process::id()),
        systemd: a.systemd_cgroup,
        host: features::Host::probe(),
    };
    if let Some(n) = a
        .scenario
        .iter()
        .find(|n| !all.iter().any(|s| s.name == *n))
    {
        eprintln!("berth-conformance: no scenario is named {n:?} (see --list)");
        std::process::exit(1);
    }
    let chosen: Vec<_> = all.iter().filter(|s| selected(&a, s.name)).collect();
    if chosen.is_empty() {
        eprintln!(
            "berth-conformance: no scenario matches --filter {:?} (see --list)",
            a.filter
        );
        std::process::exit(1);
    }
    report::header();
    let mut rows = Vec::new();
    for s in chosen {
        let r = run_one(&env, &a, s);
        report::row(&r);
        if a.verbose {
            for f in &r.counts.failures {
                println!("    {f}");
            }
        }
        rows.push(r);
    }
    scenarios::remove_cgroups(&env.prefix);
    scenarios::unmount_under(&work);
    if !a.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    let ok = report::totals(&rows);
    std::process::exit(i32::from(!ok));
}

fn version(bin: &Path) -> String {
    let out = std::process::Command::new(bin).arg("--version").output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "version unknown".into())
}
