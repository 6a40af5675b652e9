//! process.capabilities against the five sets in /proc/self/status.

use conformance::caps;
use conformance::json::{at, strs};

use crate::{Ctx, T};

const SETS: [(&str, &str); 5] = [
    ("bounding", "CapBnd"),
    ("effective", "CapEff"),
    ("permitted", "CapPrm"),
    ("inheritable", "CapInh"),
    ("ambient", "CapAmb"),
];

pub fn check(cx: &Ctx, t: &mut T) {
    let Some(cfg) = at(&cx.cfg, "process.capabilities") else {
        t.skip("process.capabilities", "not set");
        return;
    };
    for (set, key) in SETS {
        let desc = format!("process.capabilities.{set} is {key}");
        // A set the config leaves out is empty.
        let want = match caps::mask(&strs(cfg.get(set))) {
            Ok(m) => m,
            Err(name) => {
                t.error(&desc, format!("config names unknown capability {name}"));
                continue;
            }
        };
        let Some(got) = cx.status(key).and_then(|h| u64::from_str_radix(h, 16).ok()) else {
            t.error(&desc, format!("no {key} in /proc/self/status"));
            continue;
        };
        let why = format!(
            "missing {:?}, extra {:?}",
            caps::names(want & !got),
            caps::names(got & !want)
        );
        t.ok(want == got, desc, why);
    }
}
