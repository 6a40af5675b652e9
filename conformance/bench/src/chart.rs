//! `berth-bench chart`: the medians of a results file as text bars, and
//! optionally as an SVG (bars = median, whisker = min..p90).

use std::fmt::Write;

use crate::report::value;
use crate::results::{Metric, Report};

const TEXT_WIDTH: f64 = 40.0;

fn scale(m: &Metric) -> f64 {
    m.results
        .iter()
        .filter_map(|r| r.stats)
        .map(|s| s.median)
        .fold(0.0, f64::max)
}

/// A bar of `frac` (0..=1) of the width, in eighths of a character.
fn bar(frac: f64) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (frac.clamp(0.0, 1.0) * TEXT_WIDTH * 8.0).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    }
    s
}

pub fn text(rep: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {} ({} cpus)  ratios vs {}",
        rep.timestamp, rep.host.kernel, rep.host.cpus, rep.baseline
    );
    let name_w = rep.runtimes.iter().map(|r| r.name.len()).max().unwrap_or(4);
    for m in &rep.metrics {
        let _ = writeln!(out, "\n{} [{}]", m.title.trim(), m.unit);
        let max = scale(m);
        for r in &m.results {
            let _ = write!(out, "  {:<name_w$}  ", r.runtime);
            match (r.stats, &r.na) {
                (_, Some(why)) => {
                    let _ = writeln!(out, "n/a ({why})");
                }
                (None, None) => {
                    let _ = writeln!(out, "no samples ({} failures)", r.failures);
                }
                (Some(s), None) => {
                    let frac = if max > 0.0 { s.median / max } else { 0.0 };
                    let ratio = r.ratio.map(|x| format!("  ×{x:.2}")).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{:<w$} {:>7}{ratio}",
                        bar(frac),
                        value(s.median, &m.unit),
                        w = TEXT_WIDTH as usize
                    );
                }
            }
        }
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLORS: [&str; 6] = [
    "#d9480f", "#1971c2", "#2f9e44", "#7048e8", "#e8590c", "#495057",
];

pub fn svg(rep: &Report) -> String {
    let (left, bar_w, row_h, title_h) = (90.0, 420.0, 18.0, 26.0);
    let width = left + bar_w + 150.0;
    let panel_h = |m: &Metric| title_h + row_h * m.results.len() as f64 + 8.0;
    let height = 34.0 + rep.metrics.iter().map(panel_h).sum::<f64>();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="8" y="18" font-weight="bold">berth-bench {} — {} ({} cpus); bar = median, line = min..p90</text>"#,
        esc(&rep.timestamp),
        esc(&rep.host.kernel),
        rep.host.cpus
    );
    let mut y = 34.0;
    for m in &rep.metrics {
        let _ = writeln!(
            s,
            r#"<text x="8" y="{}" font-weight="bold">{} [{}]</text>"#,
            y + 16.0,
            esc(m.title.trim()),
            esc(&m.unit)
        );
        let max = rep_max(m);
        let mut ry = y + title_h;
        for (i, r) in m.results.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<text x="8" y="{}">{}</text>"#,
                ry + 12.0,
                esc(&r.runtime)
            );
            match (r.stats, &r.na) {
                (Some(st), None) if max > 0.0 => {
                    let px = |v: f64| left + bar_w * v / max;
                    let _ = writeln!(
                        s,
                        r#"<rect x="{left}" y="{}" width="{:.1}" height="12" fill="{color}"/>"#,
                        ry + 2.0,
                        px(st.median) - left
                    );
                    let _ = writeln!(
                        s,
                        r##"<line x1="{:.1}" x2="{:.1}" y1="{}" y2="{}" stroke="#000"/>"##,
                        px(st.min),
                        px(st.p90),
                        ry + 8.0,
                        ry + 8.0
                    );
                    let ratio = r.ratio.map(|x| format!(" ×{x:.2}")).unwrap_or_default();
                    let _ = writeln!(
                        s,
                        r#"<text x="{:.1}" y="{}">{}{ratio}</text>"#,
                        px(st.p90.max(st.median)) + 6.0,
                        ry + 12.0,
                        value(st.median, &m.unit)
                    );
                }
                _ => {
                    let why =
                        r.na.clone()
                            .unwrap_or_else(|| format!("no samples ({} failures)", r.failures));
                    let _ = writeln!(
                        s,
                        r##"<text x="{left}" y="{}" fill="#868e96">n/a: {}</text>"##,
                        ry + 12.0,
                        esc(&why)
                    );
                }
            }
            ry += row_h;
        }
        y += panel_h(m);
    }
    s.push_str("</svg>\n");
    s
}

/// The SVG's scale also covers the p90 whiskers so none leaves the panel.
fn rep_max(m: &Metric) -> f64 {
    m.results
        .iter()
        .filter_map(|r| r.stats)
        .map(|s| s.p90.max(s.median))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_in_eighths() {
        assert_eq!(bar(0.0), "");
        assert_eq!(bar(1.0).chars().count(), TEXT_WIDTH as usize);
        assert_eq!(bar(0.5), "█".repeat(20));
        assert_eq!(bar(1.0 / 320.0), "▏");
        assert_eq!(bar(2.0), bar(1.0));
    }

    #[test]
    fn svg_escapes_text() {
        assert_eq!(esc("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
