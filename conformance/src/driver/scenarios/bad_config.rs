//! Configs the spec says MUST be refused: create fails, its error names
//! what is wrong (the field, or the bad value), and it leaves nothing.

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

/// Create must fail naming `names` (any one of them: runtimes word their
/// errors differently), and no container may exist afterwards.
fn refused(c: &mut Case, desc: &str, names: &[&str]) {
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails(&format!("{desc}: create fails"), &out);
    names_field(c, desc, &out.stderr, names);
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

/// The error (stderr) names one of `names`.
fn names_field(c: &mut Case, desc: &str, stderr: &str, names: &[&str]) {
    let last = crate::runtime::last_line(stderr);
    c.t.ok(
        names.iter().any(|n| stderr.contains(n)),
        format!("{desc}: the error names {}", names.join(" or ")),
        format!("error: {last:?}"),
    );
}

fn caps_fail(c: &mut Case) {
    c.cfg["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_TEST"]);
    refused(c, "unknown capability CAP_TEST", &["CAP_TEST"]);
}

fn rlimits_fail(c: &mut Case) {
    c.cfg["process"]["rlimits"] = json!([{"type": "RLIMIT_TEST", "soft": 1, "hard": 1}]);
    refused(c, "unknown rlimit RLIMIT_TEST", &["RLIMIT_TEST"]);
}

fn with(c: &mut Case, desc: &str, names: &[&str], edit: impl FnOnce(&mut Value)) {
    let saved = c.cfg.clone();
    edit(&mut c.cfg);
    refused(c, desc, names);
    c.cfg = saved;
}

fn bad_config(c: &mut Case) {
    with(
        c,
        "invalid ociVersion",
        &["ociVersion", "\"invalid\""],
        |v| v["ociVersion"] = json!("invalid"),
    );
    with(c, "unknown namespace type", &["conformance"], |v| {
        v["linux"]["namespaces"] = json!([{"type": "conformance"}, {"type": "mount"}])
    });
    with(c, "duplicate namespace type", &["uts"], |v| {
        v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "uts"}])
    });
    with(c, "missing root directory", &["no-such-rootfs"], |v| {
        v["root"]["path"] = json!("no-such-rootfs")
    });
    with(c, "relative namespace path", &["proc/self/ns/net"], |v| {
        v["linux"]["namespaces"] =
            json!([{"type": "mount"}, {"type": "network", "path": "proc/self/ns/net"}])
    });
    with(c, "empty process.args", &["args"], |v| {
        v["process"]["args"] = json!([])
    });
    with(c, "non-absolute process.cwd", &["cwd"], |v| {
        v["process"]["cwd"] = json!("tmp")
    });
    with(c, "negative uid", &["uid", "-1"], |v| {
        v["process"]["user"]["uid"] = json!(-1)
    });
    // Not JSON at all: write it by hand, bypassing write_config.
    let id = c.new_id();
    let out = match std::fs::write(c.dir.join("config.json"), "{ not json") {
        Ok(()) => c.call(&["create", "--bundle", &c.dir.to_string_lossy(), &id]),
        Err(e) => return c.t.error("write a broken config.json", e),
    };
    c.fails("config.json that is not JSON: create fails", &out);
    names_field(
        c,
        "config.json that is not JSON",
        &out.stderr,
        &["config.json"],
    );
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
        names_field(
            c,
            "without process: create refused",
            &out.stderr,
            &["process"],
        );
    }
    c.cfg = saved;
}
