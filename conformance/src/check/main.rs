//! berth-check: runs as the container's process and checks from inside that
//! each setting of the config took effect. Output is TAP on stdout; the exit
//! status is 1 when any assertion failed.
//!
//! Inputs (written into the rootfs by the driver):
//! - the config, `argv[1]` or /.conformance/config.json;
//! - /.conformance/host.json: what only the host knows, e.g. its namespace
//!   inodes (`ns`) and those of the `path`s the config joins (`nspath`).

mod caps;
mod cgroups;
mod devices;
mod limits;
mod misc;
mod mounts;
mod ns;
mod paths;
mod process;
mod security;
mod sys;
mod sysctl;

use serde_json::Value;

use conformance::tap::Tap;

pub type T = Tap<std::io::Stdout>;

/// What every area reads: the config, the host's facts and our own status file.
pub struct Ctx {
    pub cfg: Value,
    pub host: Value,
    pub status: String,
}

impl Ctx {
    /// A `Key:\tvalue` line of /proc/self/status.
    pub fn status(&self, key: &str) -> Option<&str> {
        self.status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
    }
}

fn load(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn main() {
    let cfg_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/.conformance/config.json".into());
    let mut t = Tap::new(std::io::stdout());
    // Snapshot state before anything this program does could change it.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cfg = match load(&cfg_path) {
        Ok(v) => v,
        Err(e) => {
            t.error("read the config", e);
            t.finish();
            std::process::exit(1);
        }
    };
    let host = load("/.conformance/host.json").unwrap_or(Value::Null);
    let cx = Ctx { cfg, host, status };
    process::check(&cx, &mut t);
    caps::check(&cx, &mut t);
    limits::check(&cx, &mut t);
    security::check(&cx, &mut t);
    ns::check(&cx, &mut t);
    mounts::check(&cx, &mut t);
    paths::check(&cx, &mut t);
    devices::check(&cx, &mut t);
    sysctl::check(&cx, &mut t);
    cgroups::check(&cx, &mut t);
    misc::check(&cx, &mut t);
    let failed = t.finish();
    std::process::exit(i32::from(failed > 0));
}
