//! Counted skips. libtest counts a test that returns early as passed and
//! hides what it printed, so a test that cannot check anything on this host
//! calls `skip!(reason)`: it prints `SKIP <test>: <reason>` on the real
//! stderr (libtest only captures `print!`/`eprint!`) and appends the line to
//! the file named by $BERTH_SKIP_LOG, from which run-tests.sh counts skips
//! apart from passes.
#![allow(dead_code)]

use std::io::Write;

pub fn record(why: &str) {
    let name = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    let line = format!("SKIP {name}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("BERTH_SKIP_LOG") {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut f) = log {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Records a counted skip with a formatted reason and returns from the test.
#[macro_export]
macro_rules! skip {
    ($($why:tt)*) => {{
        $crate::skip::record(&format!($($why)*));
        return;
    }};
}

/// Skips (counted) unless the test runs as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            $crate::skip!("needs root");
        }
    };
}
