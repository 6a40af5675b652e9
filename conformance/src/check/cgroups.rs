//! linux.resources read back from the container's own cgroup files, when a
//! cgroup mount makes them visible inside.

use conformance::cgroup::{self, Layout};
use conformance::json::at;

use crate::{Ctx, T};

pub fn check(cx: &Ctx, t: &mut T) {
    let Some(res) = at(&cx.cfg, "linux.resources") else {
        return t.skip("linux.resources", "not set");
    };
    let layout = match Layout::of("self") {
        Ok(l) => l,
        Err(e) => return t.error("linux.resources: find own cgroup", e),
    };
    let checks = cgroup::checks(res, &layout);
    if checks.is_empty() {
        return;
    }
    if layout.is_empty() {
        // The driver checks the same files from the host in that case.
        return t.skip(
            "linux.resources from inside",
            "no cgroup filesystem shows this container's cgroup",
        );
    }
    cgroup::evaluate(t, &layout, &checks, "inside: ");
}
