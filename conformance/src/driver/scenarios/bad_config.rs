//! Configs the spec says MUST be refused: create fails and leaves nothing.

use serde_json::{json, Value};

use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "process_capabilities_fail",
        features: &[],
        run: caps_fail,
    },
    Scenario {
        name: "process_rlimits_fail",
        features: &[],
        run: rlimits_fail,
    },
    Scenario {
        name: "bad_config",
        features: &[],
        run: bad_config,
    },
];

/// Create must fail, and no container may exist afterwards.
fn refused(c: &mut Case, desc: &str) {
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails(&format!("{desc}: create fails"), &out);
    if out.ok() {
        // Never start it: a refused config must not run.
        c.call(&["delete", "-f", &id]);
    }
    c.t.ok(
        c.rt().state(&id).is_err(),
        format!("{desc}: no container is left"),
        "state succeeds",
    );
}

fn caps_fail(c: &mut Case) {
    c.cfg["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_TEST"]);
    refused(c, "unknown capability CAP_TEST");
}

fn rlimits_fail(c: &mut Case) {
    c.cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]);
    refused(c, "unknown rlimit RLIMIT_TEST");
}

fn with(c: &mut Case, desc: &str, edit: impl FnOnce(&mut Value)) {
    let saved = c.cfg.clone();
    edit(&mut c.cfg);
    refused(c, desc);
    c.cfg = saved;
}

fn bad_config(c: &mut Case) {
    with(c, "invalid ociVersion", |v| {
        v["ociVersion"] = json!("invalid")
    });
    with(c, "unknown namespace type", |v| {
        v["linux"]["namespaces"] = json!([{"type": "conformance"}, {"type": "mount"}])
    });
    with(c, "duplicate namespace type", |v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "uts"}])
    });
    with(c, "missing root directory", |v| {
        v["root"]["path"] = json!("no-such-rootfs")
    });
    with(
        c,
        "relative namespace path",
        |v| {
            v["linux"]["namespaces"] =
                json!([{"type": "mount"}, {"type": "network", "path": "proc/self/ns/net"}])
        },
    );
    with(c, "empty process.args", |v| {
        v["process"]["args"] = json!([])
    });
    with(c, "non-absolute process.cwd", |v| {
        v["process"]["cwd"] = json!("tmp")
    });
    with(c, "negative uid", |v| {
        v["process"]["user"]["uid"] = json!(-1)
    });
    // Not JSON at all: write it by hand, bypassing write_config.
    let id = c.new_id();
    let out = match std::fs::write(c.dir.join("config.json"), "{ not json") {
        Ok(()) => c.call(&["create", "--bundle", &c.dir.to_string_lossy(), &id]),
        Err(e) => return c.t.error("write a broken config.json", e),
    };
    c.fails("config.json that is not JSON: create fails", &out);
    c.t.ok(
        c.rt().state(&id).is_err(),
        "config.json that is not JSON: no container is left",
        "state succeeds",
    );
    // No process: the spec allows create, but start MUST then fail.
    let saved = c.cfg.clone();
    c.cfg.as_object_mut().map(|o| o.remove("process"));
    let id = c.new_id();
    let out = c.create(&id, &[]);
    if out.ok() {
        c.fails("without process: start fails", &c.call(&["start", &id]));
        c.call(&["delete", "-f", &id]);
    } else {
        c.t.ok(true, "without process: create refused", "");
    }
    c.cfg = saved;
}
