//! TAP (Test Anything Protocol) output as `ok N - desc` lines, and the
//! parser the driver uses to count a checker's results.

use std::fmt::Display;
use std::io::Write;

/// Writes TAP lines as they happen, so a checker that dies halfway still
/// leaves every assertion it made on stdout.
pub struct Tap<W: Write> {
    out: W,
    n: u32,
    failed: u32,
}

impl<W: Write> Tap<W> {
    pub fn new(out: W) -> Self {
        Tap {
            out,
            n: 0,
            failed: 0,
        }
    }

    fn line(&mut self, text: std::fmt::Arguments) {
        // A checker whose stdout is gone has nobody to report to; carry on.
        let _ = writeln!(self.out, "{text}");
    }

    /// One assertion; `why` says what was seen when it failed.
    pub fn ok(&mut self, pass: bool, desc: impl Display, why: impl Display) -> bool {
        self.n += 1;
        let n = self.n;
        if pass {
            self.line(format_args!("ok {n} - {desc}"));
        } else {
            self.failed += 1;
            self.line(format_args!("not ok {n} - {desc}: {why}"));
        }
        pass
    }

    /// Asserts equality and reports both sides on failure.
    pub fn eq<T: PartialEq + std::fmt::Debug>(
        &mut self,
        desc: impl Display,
        want: T,
        got: T,
    ) -> bool {
        let why = format!("want {want:?}, got {got:?}");
        self.ok(want == got, desc, why)
    }

    /// Something that could not be checked here; never counted as passed.
    pub fn skip(&mut self, desc: impl Display, reason: impl Display) {
        self.n += 1;
        let n = self.n;
        self.line(format_args!("ok {n} - {desc} # SKIP {reason}"));
    }

    /// A harness problem (unreadable file, bad config): a failed assertion.
    pub fn error(&mut self, desc: impl Display, err: impl Display) {
        self.ok(false, desc, err);
    }

    pub fn inner(&mut self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    pub fn finish(&mut self) -> u32 {
        let n = self.n;
        self.line(format_args!("1..{n}"));
        let _ = self.out.flush();
        self.failed
    }
}

/// Counts from one TAP stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    pub skipped: u32,
    /// `not ok` lines, kept for the driver's failure report.
    pub failures: Vec<String>,
    pub plan: Option<u32>,
}

impl Counts {
    pub fn total(&self) -> u32 {
        self.passed + self.failed + self.skipped
    }
}

/// Parses TAP; only lines starting in column 0 count. A SKIP directive makes
/// an `ok` a skip (TODO `not ok` lines still count as failed: we write none).
pub fn parse(text: &str) -> Counts {
    let mut c = Counts::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("1..") {
            c.plan = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if line.starts_with("not ok") {
            c.failed += 1;
            c.failures.push(line.to_string());
        } else if line.starts_with("ok") {
            if line.contains("# SKIP") {
                c.skipped += 1;
            } else {
                c.passed += 1;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_parses_round_trip() {
        let mut buf = Vec::new();
        let mut t = Tap::new(&mut buf);
        t.ok(true, "a", "");
        t.eq("b", 1, 2);
        t.skip("c", "no AppArmor");
        assert_eq!(t.finish(), 1);
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("not ok 2 - b: want 1, got 2"));
        let c = parse(&text);
        assert_eq!((c.passed, c.failed, c.skipped, c.plan), (1, 1, 1, Some(3)));
    }

    #[test]
    fn indented_lines_do_not_count() {
        let c = parse("  not ok 1 - nested\nok 1 - x\n");
        assert_eq!((c.passed, c.failed), (1, 0));
    }
}
