//! The lifecycle seen from outside: create/start/state/kill/delete, their
//! statuses and the errors the runtime spec requires.

use std::path::Path;

use serde_json::json;

use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "create",
        features: &[],
        run: create,
    },
    Scenario {
        name: "start",
        features: &[],
        run: start,
    },
    Scenario {
        name: "state",
        features: &[],
        run: state,
    },
    Scenario {
        name: "kill",
        features: &[],
        run: kill,
    },
    Scenario {
        name: "kill_no_effect",
        features: &[],
        run: kill_no_effect,
    },
    Scenario {
        name: "killsig",
        features: &[],
        run: killsig,
    },
    Scenario {
        name: "delete",
        features: &[],
        run: delete,
    },
    Scenario {
        name: "delete_created",
        // runc and berth delete a created container (containerd's runc-v2
        // shim relies on it); the spec says that MUST fail. A runtime that
        // chose runc's behaviour skips this with --skip-feature strict-delete.
        features: &["strict-delete"],
        run: delete_created,
    },
    Scenario {
        name: "delete_resources",
        features: &[],
        run: delete_resources,
    },
    Scenario {
        name: "delete_only_create_resources",
        features: &["cgroup-pids"],
        run: delete_only_create_resources,
    },
    Scenario {
        name: "config_updates_without_affect",
        features: &[],
        run: config_updates_without_affect,
    },
    Scenario {
        name: "pidfile",
        features: &[],
        run: pidfile,
    },
    Scenario {
        name: "misc_props",
        features: &[],
        run: misc_props,
    },
];

pub fn sh(c: &mut Case, script: &str) {
    c.cfg["process"]["args"] = json!(["sh", "-c", script]);
}

/// Polls the container's stdout until it holds `needle` `times` times.
pub fn wait_output(c: &mut Case, id: &str, needle: &str, times: usize) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < super::SETTLE {
        if c.output(id).matches(needle).count() >= times {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

fn create(c: &mut Case) {
    sh(c, "echo ran");
    let id = c.new_id();
    let out = c.create(&id, &[]);
    if !c.ok("create succeeds", &out) {
        return;
    }
    c.status_is("status after create is created", &id, "created");
    let pid = c.pid(&id).unwrap_or(0);
    let alive = pid > 0 && Path::new(&format!("/proc/{pid}")).exists();
    c.t.ok(alive, "state pid is a live process", format!("pid {pid}"));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let ran = c.output(&id);
    c.t.ok(
        ran.is_empty(),
        "the user process does not run before start",
        format!("output {ran:?}"),
    );
    let again = c.create(&id, &[]);
    c.fails("create with an id in use fails", &again);
    c.status_is("the existing container is untouched", &id, "created");
    let id2 = c.new_id();
    let out = c.call(&["create", "--bundle", "/nonexistent-bundle", &id2]);
    c.fails("create with a missing bundle fails", &out);
    c.t.ok(
        c.rt().state(&id2).is_err(),
        "a failed create leaves no container",
        "state succeeds",
    );
    let out = c.call(&["delete", "-f", &id]);
    c.ok("delete -f of a created container", &out);
}

fn start(c: &mut Case) {
    let out = c.call(&["start", "conf-no-such-container"]);
    c.fails("start of an unknown id fails", &out);
    sh(c, "echo started; sleep 100");
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    let out = c.call(&["start", &id]);
    c.ok("start of a created container", &out);
    c.status_is("status after start is running", &id, "running");
    let ran = wait_output(c, &id, "started", 1);
    c.t.ok(ran, "the user process ran", "no output");
    let out = c.call(&["start", &id]);
    c.fails("start of a running container fails", &out);
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped after KILL", &id, "stopped");
    let out = c.call(&["start", &id]);
    c.fails("start of a stopped container fails", &out);
    c.ok("delete", &c.call(&["delete", &id]));
}

fn state(c: &mut Case) {
    let out = c.call(&["state", "conf-no-such-container"]);
    c.fails("state of an unknown id fails", &out);
    sh(c, "sleep 100");
    c.cfg["annotations"] = json!({"org.opencontainers.conformance": "yes"});
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    let st = match c.rt().state(&id) {
        Ok(s) => s,
        Err(e) => return c.t.error("state of a created container", e),
    };
    let ver = st.get("ociVersion").and_then(|v| v.as_str()).unwrap_or("");
    c.t.ok(!ver.is_empty(), "state has ociVersion", format!("{st}"));
    c.t.eq(
        "state id",
        Some(id.as_str()),
        st.get("id").and_then(|v| v.as_str()),
    );
    c.t.eq(
        "state status",
        Some("created"),
        st.get("status").and_then(|v| v.as_str()),
    );
    c.t.ok(
        st.get("pid")
            .and_then(|v| v.as_i64())
            .is_some_and(|p| p > 0),
        "state pid while created",
        format!("{st}"),
    );
    let bundle = c.dir.to_string_lossy().into_owned();
    c.t.eq(
        "state bundle is the absolute bundle path",
        Some(bundle.as_str()),
        st.get("bundle").and_then(|v| v.as_str()),
    );
    c.t.eq(
        "state annotations",
        Some(&c.cfg["annotations"].clone()),
        st.get("annotations"),
    );
    c.ok("start", &c.call(&["start", &id]));
    c.status_is("state status while running", &id, "running");
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("state status after the process exits", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
    c.t.ok(
        c.rt().state(&id).is_err(),
        "state after delete fails",
        "state still succeeds",
    );
}

fn kill(c: &mut Case) {
    c.cfg["process"]["args"] = json!(["sleep", "100"]);
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    c.ok(
        "kill of a created container",
        &c.call(&["kill", &id, "KILL"]),
    );
    c.wait_status("created container stops after KILL", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    c.ok("start", &c.call(&["start", &id]));
    c.ok(
        "kill of a running container",
        &c.call(&["kill", &id, "KILL"]),
    );
    c.wait_status("running container stops after KILL", &id, "stopped");
    c.fails(
        "kill of a stopped container fails",
        &c.call(&["kill", &id, "KILL"]),
    );
    c.fails(
        "kill of an unknown id fails",
        &c.call(&["kill", "conf-no-such-container", "KILL"]),
    );
    c.ok("delete", &c.call(&["delete", &id]));
}

fn kill_no_effect(c: &mut Case) {
    sh(c, "true");
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    c.ok("start", &c.call(&["start", &id]));
    c.wait_status("process exits", &id, "stopped");
    let out = c.call(&["kill", &id, "TERM"]);
    c.fails("kill of a stopped container fails", &out);
    c.status_is("kill has no effect on a stopped container", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
}

fn killsig(c: &mut Case) {
    sh(
        c,
        "trap 'echo got' USR1; echo ready; while :; do sleep 0.05; done",
    );
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    c.ok("start", &c.call(&["start", &id]));
    let ready = wait_output(c, &id, "ready", 1);
    c.t.ok(ready, "process installed its trap", "no ready line");
    for (n, sig) in ["USR1", "SIGUSR1", "10"].iter().enumerate() {
        c.ok(&format!("kill {sig}"), &c.call(&["kill", &id, sig]));
        let got = wait_output(c, &id, "got", n + 1);
        c.t.ok(
            got,
            format!("signal given as {sig} reached the process"),
            "trap did not fire",
        );
    }
    c.status_is("the trap kept the process running", &id, "running");
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped after KILL", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
}

fn delete_created(c: &mut Case) {
    c.cfg["process"]["args"] = json!(["sleep", "100"]);
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    // The spec: deleting a container that is not stopped MUST be an error; created is not stopped.
    c.fails(
        "delete of a created (not stopped) container fails",
        &c.call(&["delete", &id]),
    );
    if c.rt().state(&id).is_err() {
        return c.t.error(
            "container still exists after the refused delete",
            "it is gone",
        );
    }
    c.call(&["delete", "-f", &id]);
}

fn delete(c: &mut Case) {
    c.fails(
        "delete of an unknown id fails",
        &c.call(&["delete", "conf-no-such-container"]),
    );
    c.cfg["process"]["args"] = json!(["sleep", "100"]);
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    c.ok("start", &c.call(&["start", &id]));
    c.fails(
        "delete of a running container fails",
        &c.call(&["delete", &id]),
    );
    c.status_is("refused delete left it running", &id, "running");
    let pid = c.pid(&id).unwrap_or(0);
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped after KILL", &id, "stopped");
    c.ok("delete of a stopped container", &c.call(&["delete", &id]));
    c.t.ok(
        c.rt().state(&id).is_err(),
        "state after delete fails",
        "state still succeeds",
    );
    c.t.ok(
        gone(pid),
        "the process is gone",
        format!("pid {pid} still runs"),
    );
    let id = c.new_id();
    if c.create_ok("create", &id, &[]) {
        c.ok("start", &c.call(&["start", &id]));
        c.ok(
            "delete -f of a running container",
            &c.call(&["delete", "-f", &id]),
        );
        c.t.ok(
            c.rt().state(&id).is_err(),
            "delete -f removed it",
            "state still succeeds",
        );
    }
}

/// A dead process may linger as a zombie until the host's init reaps it.
fn gone(pid: i64) -> bool {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    st.is_empty()
        || st
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
}

/// The container's cgroup directories, read from the host.
fn cgroup_dirs(pid: i64) -> Vec<std::path::PathBuf> {
    let Ok(layout) = conformance::cgroup::Layout::of(&pid.to_string()) else {
        return Vec::new();
    };
    ["memory", "pids", "cpu", "devices", "freezer"]
        .iter()
        .filter_map(|ctrl| layout.dir(ctrl).map(|(_, d)| d.to_path_buf()))
        .collect()
}

fn delete_resources(c: &mut Case) {
    c.cfg["process"]["args"] = json!(["sleep", "100"]);
    c.cfg["linux"]["resources"]["pids"] = json!({"limit": 64});
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    let pid = c.pid(&id).unwrap_or(0);
    let dirs = cgroup_dirs(pid);
    let want = c.env.cgroup_dir(&c.env.cgroups_path(c.name));
    let ours = dirs
        .iter()
        .all(|d| d.ends_with(want.trim_start_matches('/')));
    c.t.ok(
        !dirs.is_empty() && ours,
        "container is in its cgroupsPath",
        format!("{dirs:?}"),
    );
    c.ok("start", &c.call(&["start", &id]));
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
    let left: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
    c.t.ok(
        left.is_empty(),
        "delete removed the container's cgroups",
        format!("{left:?}"),
    );
    c.t.ok(
        gone(pid),
        "delete left no process",
        format!("pid {pid} still runs"),
    );
}

fn delete_only_create_resources(c: &mut Case) {
    // A cgroup the runtime did not create, next to the container's.
    let parent = format!("{}/{}", c.env.prefix, c.name);
    let sibling = Path::new("/sys/fs/cgroup/pids")
        .join(&parent)
        .join("not-the-runtimes");
    let sibling = if Path::new("/sys/fs/cgroup/pids").exists() {
        sibling
    } else {
        Path::new("/sys/fs/cgroup")
            .join(&parent)
            .join("not-the-runtimes")
    };
    if let Err(e) = std::fs::create_dir_all(&sibling) {
        return c.t.error(
            "make a foreign cgroup",
            format!("{}: {e}", sibling.display()),
        );
    }
    c.cfg["linux"]["cgroupsPath"] = json!(format!("/{parent}/ctr"));
    c.cfg["linux"]["resources"]["pids"] = json!({"limit": 64});
    sh(c, "true");
    let id = c.new_id();
    if c.create_ok("create", &id, &[]) {
        c.ok("start", &c.call(&["start", &id]));
        c.wait_status("stopped", &id, "stopped");
        c.ok("delete", &c.call(&["delete", &id]));
    }
    c.t.ok(
        sibling.exists(),
        "delete kept a cgroup it did not create",
        format!("{} is gone", sibling.display()),
    );
    // The parent is partly ours; runtimes may leave the parents they made.
    super::remove_cgroups(&parent);
}

fn config_updates_without_affect(c: &mut Case) {
    sh(c, "echo original");
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    sh(c, "echo changed");
    let text = serde_json::to_string(&c.cfg).unwrap_or_default();
    if let Err(e) = std::fs::write(c.dir.join("config.json"), text) {
        return c.t.error("rewrite config.json", e);
    }
    c.ok("start", &c.call(&["start", &id]));
    c.wait_status("stopped", &id, "stopped");
    let out = c.output(&id);
    c.t.ok(
        out.trim() == "original",
        "config changes after create do not affect the container",
        format!("output {out:?}"),
    );
    c.ok("delete", &c.call(&["delete", &id]));
}

fn pidfile(c: &mut Case) {
    c.cfg["process"]["args"] = json!(["sleep", "100"]);
    let id = c.new_id();
    let pf = c.dir.join("pidfile");
    let pfs = pf.to_string_lossy().into_owned();
    if !c.create_ok("create --pid-file", &id, &["--pid-file", &pfs]) {
        return;
    }
    let got = std::fs::read_to_string(&pf)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    c.t.eq("pid file holds the state pid", c.pid(&id), got);
    c.ok("delete -f", &c.call(&["delete", "-f", &id]));
}

fn misc_props(c: &mut Case) {
    sh(c, "true");
    c.cfg["annotations"] = json!({"org.conformance.unknown-key.example": ""});
    c.cfg["conformanceUnknownProperty"] = json!({"x": 1});
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.ok("unknown annotation keys and properties are accepted", &out);
    if out.ok() {
        c.ok("start", &c.call(&["start", &id]));
        c.wait_status("stopped", &id, "stopped");
        c.ok("delete", &c.call(&["delete", &id]));
    }
}
