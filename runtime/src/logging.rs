//! runc-compatible logging: `--log FILE` with `--log-format text|json`.
//! containerd's runc shim reads the last `error` line of this file to report
//! why a command failed, so the JSON keys match runc's (level, msg, time).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    path: Option<PathBuf>,
    format: Format,
    debug: bool,
    /// berth's own pid: without --log, only berth itself writes to stderr,
    /// never a container process, whose stderr is the container's.
    pid: u32,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up logging; a `--log` file that cannot be opened for appending is an
/// error (as in runc), not a log silently lost.
pub fn init(path: Option<PathBuf>, format: Format, debug: bool) -> crate::Result<()> {
    if let Some(p) = &path {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| crate::Error::Io {
                ctx: format!("--log {}", p.display()),
                source: e,
            })?;
    }
    let _ = LOGGER.set(Logger {
        path,
        format,
        debug,
        pid: std::process::id(),
    });
    Ok(())
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let line = |format| {
        let time = crate::clock::now_rfc3339();
        match format {
            Format::Json => {
                let v = serde_json::json!({"level": level, "msg": msg, "time": time});
                format!("{v}\n")
            }
            Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
        }
    };
    let Some(path) = &l.path else {
        // Like runc, whose log goes to stderr without --log: a warning
        // (running without a cgroup, say) must reach the user. Errors are
        // not repeated: the command prints its own error line.
        if (level == "warning" || level == "debug") && std::process::id() == l.pid {
            let _ = std::io::stderr().write_all(line(l.format).as_bytes());
        }
        return;
    };
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line(l.format).as_bytes());
    }
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

/// A warning for the --log file only: a condition that is normal for how
/// berth was called (an ordinary user without a writable cgroup tree, where
/// runc and crun say nothing), which must not show up in the output of a
/// script that captures stderr.
pub fn notice(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.path.is_some()) {
        write("warning", msg);
    }
}

pub fn debug(msg: impl FnOnce() -> String) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        write("debug", &msg());
    }
}
