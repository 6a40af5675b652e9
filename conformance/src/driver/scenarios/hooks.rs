//! Hooks: order and timing against the driver's own markers, arguments and
//! environment, the state on stdin, and failing hooks. Spec text is that of
//! runtime-spec 1.0.2, the ociVersion the configs declare.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "hooks",
        features: &["hooks"],
        run: order,
    },
    Scenario {
        name: "hooks_stdin",
        features: &["hooks"],
        run: stdin,
    },
    Scenario {
        name: "prestart_fail",
        features: &["hooks"],
        run: prestart_fail,
    },
    Scenario {
        name: "poststart_fail",
        features: &["hooks"],
        run: poststart_fail,
    },
    Scenario {
        name: "poststop_fail",
        features: &["hooks"],
        run: poststop_fail,
    },
    Scenario {
        name: "hooks_timeout",
        features: &["hooks"],
        run: timeout,
    },
];

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The log directory: bind-mounted into the container at the same path, so
/// a hook finds it wherever the runtime runs it (host, or container before
/// or after pivot_root).
fn logdir(c: &Case) -> PathBuf {
    c.dir.join("hooklog")
}

fn log(c: &Case) -> String {
    std::fs::read_to_string(logdir(c).join("log")).unwrap_or_default()
}

fn mark(c: &Case, what: &str) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logdir(c).join("log"));
    if let Ok(mut f) = f {
        let _ = writeln!(f, "driver:{what}");
    }
}

/// A hook that saves its stdin as NAME.json and appends "NAME env=$HOOKVAR arg=$1".
fn hook(c: &Case, name: &str, extra: &str) -> Value {
    let d = logdir(c).to_string_lossy().into_owned();
    let script =
        format!("cat > {d}/{name}.json; {extra} echo \"{name} env=$HOOKVAR arg=$1\" >> {d}/log");
    json!({"path": "/bin/sh", "args": ["sh", "-c", script, name, "hookarg"], "env": ["HOOKVAR=yes"]})
}

fn setup(c: &mut Case) -> bool {
    let d = logdir(c);
    if let Err(e) = std::fs::create_dir_all(&d) {
        c.t.error("make the hook log dir", e);
        return false;
    }
    let ds = d.to_string_lossy().into_owned();
    if let Some(m) = c.cfg["mounts"].as_array_mut() {
        m.push(
            json!({"destination": ds, "type": "bind", "source": ds, "options": ["rbind", "rw"]}),
        );
    }
    let mut hooks = serde_json::Map::new();
    for k in KINDS {
        // poststart records what the container pid runs by then: the user's program, not the runtime's init.
        let extra = if k == "poststart" {
            format!("pid=$(sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p' {ds}/poststart.json); tr '\\0' ' ' < /proc/$pid/cmdline > {ds}/poststart.cmdline;")
        } else {
            String::new()
        };
        hooks.insert(k.into(), json!([hook(c, k, &extra)]));
    }
    c.cfg["hooks"] = Value::Object(hooks);
    true
}

/// Positions of each line in the log; the first occurrence wins.
fn pos(log: &str, prefix: &str) -> Option<usize> {
    log.lines().position(|l| l.starts_with(prefix))
}

fn lifecycle(c: &mut Case, script: &str) -> Option<String> {
    super::lifecycle::sh(c, script);
    let id = c.new_id();
    mark(c, "create-begin");
    let ok = c.create_ok("create", &id, &[]);
    mark(c, "create-end");
    if !ok {
        return None;
    }
    mark(c, "start-begin");
    c.ok("start", &c.call(&["start", &id]));
    mark(c, "start-end");
    c.wait_status("process exits", &id, "stopped");
    mark(c, "delete-begin");
    c.ok("delete", &c.call(&["delete", &id]));
    mark(c, "delete-end");
    Some(id)
}

fn order(c: &mut Case) {
    if !setup(c) {
        return;
    }
    let d = logdir(c).to_string_lossy().into_owned();
    // The process outlives start, so poststart can still see what it runs;
    // the trailing builtin keeps sh from exec'ing sleep in its place.
    if lifecycle(c, &format!("echo process >> {d}/log; sleep 0.5; true")).is_none() {
        return;
    }
    let l = log(c);
    let want = [
        "driver:create-begin",
        "prestart",
        "createRuntime",
        "createContainer",
        "driver:create-end",
        "driver:start-begin",
        "startContainer",
        "poststart",
        "driver:start-end",
        "driver:delete-begin",
        "poststop",
        "driver:delete-end",
    ];
    for w in want.windows(2) {
        let (a, b) = (pos(&l, w[0]), pos(&l, w[1]));
        let ok = matches!((a, b), (Some(a), Some(b)) if a < b);
        c.t.ok(
            ok,
            format!("{} before {}", w[0], w[1]),
            format!("log: {:?}", l.lines().collect::<Vec<_>>()),
        );
    }
    let p = pos(&l, "process");
    let ok = matches!((pos(&l, "startContainer"), p), (Some(s), Some(p)) if s < p);
    c.t.ok(
        ok,
        "startContainer runs before the user process",
        format!("log: {l:?}"),
    );
    let cmd = std::fs::read_to_string(logdir(c).join("poststart.cmdline")).unwrap_or_default();
    c.t.ok(
        cmd.starts_with("sh -c echo process"),
        "poststart runs after the user process is executed",
        format!("pid ran {cmd:?}"),
    );
    for k in KINDS {
        let line = l
            .lines()
            .find(|x| x.starts_with(&format!("{k} ")))
            .unwrap_or("");
        c.t.eq(
            format!("{k}: args and env reach the hook"),
            format!("{k} env=yes arg=hookarg"),
            line.to_string(),
        );
    }
}

fn stdin(c: &mut Case) {
    if !setup(c) {
        return;
    }
    let Some(id) = lifecycle(c, "true") else {
        return;
    };
    let bundle = c.dir.to_string_lossy().into_owned();
    for k in KINDS {
        let text = std::fs::read_to_string(logdir(c).join(format!("{k}.json"))).unwrap_or_default();
        let st: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                c.t.error(
                    format!("{k}: state on stdin is JSON"),
                    format!("{e}: {text:?}"),
                );
                continue;
            }
        };
        let s = |key: &str| st.get(key).and_then(Value::as_str).map(str::to_string);
        c.t.eq(format!("{k}: state id"), Some(id.clone()), s("id"));
        c.t.eq(
            format!("{k}: state bundle"),
            Some(bundle.clone()),
            s("bundle"),
        );
        c.t.ok(
            s("ociVersion").is_some(),
            format!("{k}: state ociVersion"),
            format!("{st}"),
        );
        let status = s("status").unwrap_or_default();
        let allowed: &[&str] = match k {
            "prestart" | "createRuntime" | "createContainer" => &["creating", "created"],
            "startContainer" => &["created", "running"],
            "poststart" => &["running"],
            _ => &["stopped"],
        };
        c.t.ok(
            allowed.contains(&status.as_str()),
            format!("{k}: state status is one of {allowed:?}"),
            format!("got {status:?}"),
        );
        if k != "poststop" {
            let pid = st.get("pid").and_then(Value::as_i64).unwrap_or(0);
            c.t.ok(pid > 0, format!("{k}: state pid"), format!("got {pid}"));
        }
    }
}

fn prestart_fail(c: &mut Case) {
    if !setup(c) {
        return;
    }
    c.cfg["hooks"]["prestart"] = json!([{"path": "/bin/false"}]);
    let d = logdir(c).to_string_lossy().into_owned();
    super::lifecycle::sh(c, &format!("echo process >> {d}/log"));
    let id = c.new_id();
    let out = c.create(&id, &[]);
    c.fails("a failing prestart hook fails create", &out);
    if out.ok() {
        c.call(&["start", &id]);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let l = log(c);
    c.t.ok(
        !l.contains("process"),
        "the user process never ran",
        format!("log: {l:?}"),
    );
    c.t.ok(
        !l.contains("createRuntime"),
        "later create hooks did not run",
        format!("log: {l:?}"),
    );
    c.call(&["delete", "-f", &id]);
}

fn poststart_fail(c: &mut Case) {
    if !setup(c) {
        return;
    }
    let second = hook(c, "poststart2", "");
    c.cfg["hooks"]["poststart"] = json!([{"path": "/bin/false"}, second]);
    if lifecycle(c, "sleep 0.2").is_none() {
        return;
    }
    let l = log(c);
    c.t.ok(
        l.contains("poststart2"),
        "after a failing poststart hook the remaining ones run",
        format!("log: {l:?}"),
    );
}

fn poststop_fail(c: &mut Case) {
    if !setup(c) {
        return;
    }
    let second = hook(c, "poststop2", "");
    c.cfg["hooks"]["poststop"] = json!([{"path": "/bin/false"}, second]);
    if lifecycle(c, "true").is_none() {
        return;
    }
    let l = log(c);
    c.t.ok(
        l.contains("poststop2"),
        "after a failing poststop hook the remaining ones run",
        format!("log: {l:?}"),
    );
}

fn timeout(c: &mut Case) {
    if !setup(c) {
        return;
    }
    c.cfg["hooks"]["createRuntime"] =
        json!([{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]);
    let id = c.new_id();
    let t0 = std::time::Instant::now();
    let out = c.create(&id, &[]);
    let secs = t0.elapsed().as_secs_f64();
    c.fails("a createRuntime hook past its timeout fails create", &out);
    c.t.ok(
        secs < 10.0,
        "create gave up on the hook near its 1 s timeout",
        format!("took {secs:.1} s"),
    );
    c.call(&["delete", "-f", &id]);
}
