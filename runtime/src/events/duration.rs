//! Go's duration syntax ("5s", "250ms", "1m30s", "1.5h"), which runc's
//! `--interval` takes, so scripts written for runc keep working.

use std::time::Duration;

use crate::error::{Error, Result};

const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parse a positive duration; `flag` names the option in the error.
pub fn parse(flag: &str, s: &str) -> Result<Duration> {
    let err = |why: &str| Error::option(flag, format!("{s:?}"), why);
    let mut rest = s;
    let mut nanos = 0f64;
    if rest.is_empty() {
        return Err(err("empty duration"));
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit (ns, us, ms, s, m, h)"))?;
        let value: f64 = rest[..n].parse().map_err(|_| err("bad number"))?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == &rest[..u])
            .ok_or_else(|| err("unknown unit (ns, us, ms, s, m, h)"))?
            .1;
        nanos += value * scale;
        rest = &rest[u..];
    }
    if nanos < 1.0 {
        return Err(err("must be greater than 0"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let p = |s| parse("--interval", s).unwrap();
        assert_eq!(p("5s"), Duration::from_secs(5));
        assert_eq!(p("250ms"), Duration::from_millis(250));
        assert_eq!(p("1m30s"), Duration::from_secs(90));
        assert_eq!(p("1.5h"), Duration::from_secs(5400));
        assert_eq!(p("10us"), Duration::from_micros(10));
        for bad in ["", "5", "0s", "-1s", "5x", "s", "1..2s"] {
            let e = parse("--interval", bad).unwrap_err().to_string();
            assert!(e.contains("--interval"), "{bad:?}: {e}");
        }
    }
}
