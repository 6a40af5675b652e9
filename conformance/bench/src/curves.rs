//! The cost curves of the scale group as SVG: one panel per measure
//! (`scale.KEY@N`), N on a log axis, the median per runtime as a line.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::report::value;
use crate::results::{Metric, Report};

/// measure key → (title without ", N=…", unit, runtime → [(N, median)]).
type Curves = BTreeMap<String, (String, String, BTreeMap<String, Vec<(f64, f64)>>)>;

fn curves(metrics: &[Metric]) -> Curves {
    let mut out = Curves::new();
    for m in metrics {
        let Some(rest) = m.key.strip_prefix("scale.") else {
            continue;
        };
        let Some((key, n)) = rest.split_once('@') else {
            continue;
        };
        let Ok(n) = n.parse::<f64>() else { continue };
        let title = m.title.split(", N=").next().unwrap_or(&m.title).to_string();
        let e = out
            .entry(key.to_string())
            .or_insert_with(|| (title, m.unit.clone(), BTreeMap::new()));
        for r in &m.results {
            if let Some(s) = r.stats {
                e.2.entry(r.runtime.clone())
                    .or_default()
                    .push((n, s.median));
            }
        }
    }
    out
}

const COLORS: [&str; 6] = [
    "#d9480f", "#1971c2", "#2f9e44", "#7048e8", "#e8590c", "#495057",
];

/// None when the results hold no scale group.
pub fn svg(rep: &Report) -> Option<String> {
    let c = curves(&rep.metrics);
    if c.is_empty() {
        return None;
    }
    let (pw, ph, left, top, gap) = (360.0, 200.0, 60.0, 40.0, 70.0);
    let cols = 2usize;
    let rows = c.len().div_ceil(cols);
    let width = left + cols as f64 * (pw + gap);
    let height = top + rows as f64 * (ph + gap) + 20.0;
    let runtimes: Vec<&str> = rep.runtimes.iter().map(|r| r.name.as_str()).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = write!(
        s,
        r#"<text x="8" y="18" font-weight="bold">berth-bench cost curves {} — median per runtime, N containers running (log scale):"#,
        rep.timestamp
    );
    for (i, rt) in runtimes.iter().enumerate() {
        let _ = write!(
            s,
            r#" <tspan fill="{}">■ {rt}</tspan>"#,
            COLORS[i % COLORS.len()]
        );
    }
    let _ = writeln!(s, "</text>");
    for (idx, (title, unit, per_rt)) in c.values().enumerate() {
        let x0 = left + (idx % cols) as f64 * (pw + gap);
        let y0 = top + (idx / cols) as f64 * (ph + gap);
        let pts = per_rt.values().flatten();
        let (nmin, nmax) = pts
            .clone()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let ymax = pts.map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
        let span = (nmax.log10() - nmin.log10()).max(1e-9);
        let px = |n: f64| x0 + pw * (n.log10() - nmin.log10()) / span;
        let py = |v: f64| y0 + ph - ph * v / ymax;
        let _ = writeln!(
            s,
            r#"<text x="{x0}" y="{}" font-weight="bold">{title} [{unit}]</text>"#,
            y0 - 8.0
        );
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#ced4da"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#868e96">{}</text><text x="{}" y="{}" text-anchor="end" fill="#868e96">0</text>"##,
            x0 - 4.0,
            y0 + 10.0,
            value(ymax, unit),
            x0 - 4.0,
            y0 + ph
        );
        let mut ns: Vec<f64> = per_rt.values().flatten().map(|p| p.0).collect();
        ns.sort_by(f64::total_cmp);
        ns.dedup();
        for n in ns {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#868e96">N={n}</text>"##,
                px(n),
                y0 + ph + 14.0
            );
        }
        for (rt, points) in per_rt {
            let i = runtimes.iter().position(|r| r == rt).unwrap_or(0);
            let color = COLORS[i % COLORS.len()];
            let line: Vec<String> = points
                .iter()
                .map(|&(n, v)| format!("{:.1},{:.1}", px(n), py(v)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                line.join(" ")
            );
            for &(n, v) in points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    px(n),
                    py(v)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{RuntimeResult, Stats};

    fn metric(key: &str, median: f64) -> Metric {
        Metric {
            key: key.into(),
            title: format!("{key}, N=x"),
            unit: "ms".into(),
            note: None,
            results: vec![RuntimeResult {
                runtime: "berth".into(),
                stats: Some(Stats {
                    n: 1,
                    median,
                    min: median,
                    p90: median,
                    mean: median,
                    max: median,
                }),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn scale_metrics_become_one_curve_per_measure() {
        let c = curves(&[
            metric("scale.state@10", 1.0),
            metric("scale.state@100", 2.0),
            metric("scale.list@10", 3.0),
            metric("run", 9.0),
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(c["state"].2["berth"], vec![(10.0, 1.0), (100.0, 2.0)]);
        assert_eq!(c["list"].2["berth"], vec![(10.0, 3.0)]);
        assert_eq!(c["state"].0, "scale.state@10");
    }
}
