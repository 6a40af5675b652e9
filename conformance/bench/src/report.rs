//! The table on stdout: one row per metric, one column per runtime, each
//! cell `median (min / p90) ×ratio`, footnotes for notes and failures.

use std::fmt::Write;

use crate::results::{Metric, Report, RuntimeResult};

pub fn value(v: f64, unit: &str) -> String {
    match unit {
        "ms" if v >= 1000.0 => format!("{v:.0}"),
        _ => format!("{v:.1}"),
    }
}

fn cell(r: &RuntimeResult, unit: &str, baseline: bool) -> String {
    if r.na.is_some() {
        return "n/a".into();
    }
    let Some(s) = r.stats else {
        return if r.failures > 0 {
            "FAIL".into()
        } else {
            "-".into()
        };
    };
    let mut c = format!(
        "{} ({} / {})",
        value(s.median, unit),
        value(s.min, unit),
        value(s.p90, unit)
    );
    if let (Some(x), false) = (r.ratio, baseline) {
        let _ = write!(c, " ×{x:.2}");
    }
    if r.failures > 0 {
        c.push('!');
    }
    c
}

pub fn table(rep: &Report) -> String {
    let mut out = String::new();
    let h = &rep.host;
    let _ = writeln!(
        out,
        "berth-bench {}  {} {} ({} cpus, {})  cgroups: {}{}",
        rep.timestamp,
        h.kernel,
        h.arch,
        h.cpus,
        h.cpu,
        h.cgroup_layout,
        if h.unified_detached {
            ", unified detached in the bench's mount namespace"
        } else {
            ""
        }
    );
    for r in &rep.runtimes {
        let _ = writeln!(out, "  {:<8} {}  ({})", r.name, r.path, r.version);
    }
    let s = &rep.settings;
    let _ = writeln!(
        out,
        "  {} runs + {} warm-up per latency metric, {} batch rounds; order {}; config from `{}`",
        s.runs, s.warmup, s.batch_rounds, s.order, s.spec_from
    );
    if s.space_ms > 0 {
        let _ = writeln!(
            out,
            "  latency metrics back to back, then spaced: {} ms idle before each sample",
            s.space_ms
        );
    }
    out.push('\n');

    let label = |m: &Metric| format!("{} [{}]", m.title, m.unit);
    let first_w = rep
        .metrics
        .iter()
        .map(|m| label(m).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    // The runtimes, then rows only some metrics have (the shim group's
    // variants); each cell goes under its row's name.
    let mut columns: Vec<&str> = rep.runtimes.iter().map(|r| r.name.as_str()).collect();
    for r in rep.metrics.iter().flat_map(|m| &m.results) {
        if !columns.contains(&r.runtime.as_str()) {
            columns.push(&r.runtime);
        }
    }
    let cells: Vec<Vec<String>> = rep
        .metrics
        .iter()
        .map(|m| {
            columns
                .iter()
                .map(|col| match m.results.iter().find(|r| r.runtime == *col) {
                    Some(r) => cell(r, &m.unit, r.runtime == rep.baseline),
                    None => String::new(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells
                .iter()
                .filter_map(|row| row.get(i))
                .map(|c| c.chars().count())
                .chain([name.len(), 18])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let _ = writeln!(
        out,
        "cells: median (min / p90) ×(median / {} median)",
        rep.baseline
    );
    let mut line = format!("{:<first_w$}", "metric");
    for (name, w) in columns.iter().zip(&widths) {
        let _ = write!(line, "  {name:<w$}");
    }
    let _ = writeln!(out, "{}", line.trim_end());
    for (m, row) in rep.metrics.iter().zip(&cells) {
        let mut line = format!("{:<first_w$}", label(m));
        for (c, w) in row.iter().zip(&widths) {
            let _ = write!(line, "  {c:<w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let mut notes = String::new();
    for m in &rep.metrics {
        if let Some(n) = &m.note {
            let _ = writeln!(notes, "  {}: {n}", m.title.trim());
        }
        for r in &m.results {
            if let Some(why) = &r.na {
                let _ = writeln!(notes, "  {}: {} n/a ({why})", m.title.trim(), r.runtime);
            }
            if r.failures > 0 {
                let _ = writeln!(
                    notes,
                    "  {}: {} FAILED {}× — {}",
                    m.title.trim(),
                    r.runtime,
                    r.failures,
                    r.last_error.as_deref().unwrap_or("?")
                );
            }
        }
    }
    if !notes.is_empty() {
        let _ = write!(out, "\nnotes:\n{notes}");
    }
    out
}
