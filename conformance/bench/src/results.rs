//! The results file: everything needed to judge a run later (host,
//! versions, settings, every sample), in a layout that does not change when
//! a metric is added: `metrics` is a list keyed by `key`.

use serde::{Deserialize, Serialize};

pub const SCHEMA: u32 = 1;

#[derive(Serialize, Deserialize, Debug)]
pub struct Report {
    pub schema: u32,
    pub timestamp: String,
    pub unix_time: u64,
    pub host: Host,
    pub runtimes: Vec<RuntimeInfo>,
    /// Ratios are each runtime's median over this runtime's median.
    pub baseline: String,
    pub settings: Settings,
    pub metrics: Vec<Metric>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    pub arch: String,
    pub cpu: String,
    pub cpus: usize,
    pub mem_total_kib: u64,
    pub cgroup_layout: String,
    /// Whether the bench detached /sys/fs/cgroup/unified in its namespace.
    pub unified_detached: bool,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct RuntimeInfo {
    pub name: String,
    pub path: String,
    pub version: String,
    pub exec: bool,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Settings {
    pub runs: usize,
    pub warmup: usize,
    pub seq_count: usize,
    pub par_count: usize,
    pub batch_rounds: usize,
    /// Runtime order within a round (absent in files from before shuffling).
    #[serde(default)]
    pub order: String,
    pub spec_from: String,
    pub config_patches: Vec<String>,
    pub groups: Vec<String>,
    /// Idle ms before each sample of the spaced twins (`KEY@spaced`); 0 or
    /// absent: no spaced mode.
    #[serde(default)]
    pub space_ms: u64,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Metric {
    pub key: String,
    pub title: String,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
    pub results: Vec<RuntimeResult>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct RuntimeResult {
    pub runtime: String,
    pub samples: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stats: Option<Stats>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ratio: Option<f64>,
    pub failures: u32,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    /// Why there is no result at all (feature missing).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub na: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub p90: f64,
    pub mean: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        // Nearest-rank p90: the smallest sample with at least 90% at or below it.
        let rank = (0.9 * n as f64).ceil() as usize;
        Some(Stats {
            n,
            median,
            min: s[0],
            p90: s[rank.clamp(1, n) - 1],
            mean: s.iter().sum::<f64>() / n as f64,
            max: s[n - 1],
        })
    }
}

impl Metric {
    /// Fills stats and ratios against `baseline` from the samples.
    pub fn finish(&mut self, baseline: &str) {
        for r in &mut self.results {
            r.stats = Stats::of(&r.samples);
        }
        let base = self
            .results
            .iter()
            .find(|r| r.runtime == baseline)
            .and_then(|r| r.stats)
            .map(|s| s.median);
        for r in &mut self.results {
            r.ratio = match (r.stats, base) {
                (Some(s), Some(b)) if b > 0.0 => Some(s.median / b),
                _ => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_odd_even_and_p90() {
        let s = Stats::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            (s.n, s.median, s.min, s.max, s.p90),
            (3, 3.0, 1.0, 5.0, 5.0)
        );
        let s = Stats::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert_eq!(s.mean, 2.5);
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(Stats::of(&ten).unwrap().p90, 9.0);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(Stats::of(&twenty).unwrap().p90, 18.0);
        assert!(Stats::of(&[]).is_none());
    }

    #[test]
    fn ratios_against_baseline() {
        let r = |name: &str, v: &[f64]| RuntimeResult {
            runtime: name.into(),
            samples: v.to_vec(),
            ..Default::default()
        };
        let mut m = Metric {
            key: "k".into(),
            title: "t".into(),
            unit: "ms".into(),
            note: None,
            results: vec![r("a", &[2.0, 2.0]), r("b", &[5.0]), r("c", &[])],
        };
        m.finish("a");
        assert_eq!(m.results[0].ratio, Some(1.0));
        assert_eq!(m.results[1].ratio, Some(2.5));
        assert_eq!(m.results[2].ratio, None);
        m.finish("c");
        assert!(m.results.iter().all(|r| r.ratio.is_none()));
    }
}
