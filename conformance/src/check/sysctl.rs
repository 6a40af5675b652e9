//! linux.sysctl read back from /proc/sys.

use serde_json::Value;

use conformance::json::at;

use crate::{Ctx, T};

pub fn check(cx: &Ctx, t: &mut T) {
    let Some(map) = at(&cx.cfg, "linux.sysctl").and_then(Value::as_object) else {
        return t.skip("linux.sysctl", "not set");
    };
    for (k, v) in map {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        let want = v
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        // The kernel separates multi-value entries with tabs.
        let got = std::fs::read_to_string(&path)
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
        match got {
            Ok(g) => t.eq(format!("linux.sysctl {k}"), want, g),
            Err(e) => t.ok(false, format!("linux.sysctl {k}"), format!("{path}: {e}")),
        };
    }
}
