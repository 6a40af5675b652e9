//! The per-scenario table and the closing count.

use std::time::Duration;

use conformance::tap::Counts;

pub enum Outcome {
    Pass,
    Fail,
    Skip(String),
}

pub struct Row {
    pub name: String,
    pub outcome: Outcome,
    /// Driver assertions plus the checker's.
    pub counts: Counts,
    pub time: Duration,
    pub left: Vec<String>,
}

pub fn header() {
    println!(
        "{:<40} {:<6} {:>5} {:>6} {:>5} {:>7}  notes",
        "scenario", "result", "ok", "failed", "skip", "secs"
    );
}

pub fn row(r: &Row) {
    let (res, note) = match &r.outcome {
        Outcome::Pass => ("PASS", String::new()),
        Outcome::Fail => (
            "FAIL",
            r.counts.failures.first().cloned().unwrap_or_default(),
        ),
        Outcome::Skip(why) => ("SKIP", why.clone()),
    };
    let left = if r.left.is_empty() {
        String::new()
    } else {
        format!(" [cleaned: {}]", r.left.join(", "))
    };
    let note: String = note.chars().take(110).collect();
    println!(
        "{:<40} {:<6} {:>5} {:>6} {:>5} {:>7.2}  {note}{left}",
        r.name,
        res,
        r.counts.passed,
        r.counts.failed,
        r.counts.skipped,
        r.time.as_secs_f64()
    );
}

/// Prints the totals; the last line is exactly "N passed, N failed,
/// N skipped" (assertions; a scenario skipped whole counts as one skip).
/// A run that checked nothing fails: every scenario skipped, or none selected.
pub fn totals(rows: &[Row]) -> bool {
    let sum = |f: fn(&Counts) -> u32| rows.iter().map(|r| f(&r.counts)).sum::<u32>();
    let count = |p: fn(&Outcome) -> bool| rows.iter().filter(|r| p(&r.outcome)).count();
    let (passed, failed) = (sum(|c| c.passed), sum(|c| c.failed));
    let whole = count(|o| matches!(o, Outcome::Skip(_)));
    let skipped = sum(|c| c.skipped) as usize + whole;
    println!(
        "scenarios: {} passed, {} failed, {whole} skipped",
        count(|o| matches!(o, Outcome::Pass)),
        count(|o| matches!(o, Outcome::Fail)),
    );
    if passed == 0 {
        println!("FAIL: nothing was checked ({} scenarios run)", rows.len());
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    passed > 0 && failed == 0 && count(|o| matches!(o, Outcome::Fail)) == 0
}
