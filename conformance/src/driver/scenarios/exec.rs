//! `exec` seen from inside: the exec'd process joins the init's namespaces
//! and cgroup and gets the env, cwd, user and capabilities asked for; its
//! exit status comes back; refusals leave the container running.

use serde_json::json;

use super::lifecycle::{sh, wait_output};
use super::{Case, Scenario};

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "exec",
        features: &["exec"],
        run: exec,
    },
    Scenario {
        name: "exec_process_file",
        features: &["exec"],
        run: exec_process_file,
    },
    Scenario {
        name: "exec_cpu_affinity",
        features: &["exec", "exec-cpu-affinity"],
        run: exec_cpu_affinity,
    },
];

/// A running container whose init only sleeps; None if that failed.
fn running(c: &mut Case) -> Option<String> {
    sh(c, "echo up; exec sleep 100");
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return None;
    }
    if !c.ok("start", &c.call(&["start", &id])) {
        return None;
    }
    let up = wait_output(c, &id, "up", 1);
    c.t.ok(up, "the init runs", "no output");
    up.then_some(id)
}

/// `exec ID sh -c SCRIPT` with `opts` before the id; the call's result.
fn exec_sh(c: &Case, id: &str, opts: &[&str], script: &str) -> crate::runtime::Out {
    let mut args = vec!["exec"];
    args.extend_from_slice(opts);
    // Absolute, so a runtime that loses PATH still runs it and the env
    // assertion says why.
    args.extend_from_slice(&[id, "/bin/sh", "-c", script]);
    c.call(&args)
}

/// Namespaces and cgroup compared with pid 1's (the init, in the pid ns).
const SAME_AS_INIT: &str = "for n in pid mnt net ipc uts cgroup; do \
    [ \"$(readlink /proc/self/ns/$n)\" = \"$(readlink /proc/1/ns/$n)\" ] && echo same-$n; done; \
    [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same-cgroups; true";

fn exec(c: &mut Case) {
    let Some(id) = running(c) else { return };
    let out = exec_sh(c, &id, &[], SAME_AS_INIT);
    if c.ok("exec succeeds", &out) {
        for n in ["pid", "mnt", "net", "ipc", "uts", "cgroup", "cgroups"] {
            let line = format!("same-{n}");
            c.t.ok(
                out.stdout.lines().any(|l| l == line),
                format!("exec'd process shares the init's {n}"),
                format!("output {:?}", out.stdout),
            );
        }
    }
    // In the container's pid namespace the exec'd shell is not pid 1 and sees the init.
    let out = exec_sh(c, &id, &[], "echo $$; cat /proc/1/cmdline | tr '\\0' ' '");
    let mut l = out.stdout.lines();
    let pid_ok = l
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p > 1);
    c.t.ok(
        pid_ok,
        "exec'd process has a pid > 1 in the container",
        format!("{:?}", out.stdout),
    );
    c.t.eq(
        "pid 1 is the container's init",
        Some("sleep 100 "),
        l.next(),
    );

    let out = exec_sh(
        c,
        &id,
        &["-e", "CONF_X=exec-env"],
        "echo $CONF_X; echo $PATH",
    );
    let mut l = out.stdout.lines();
    out_is(c, "exec -e sets the variable", "exec-env", l.next(), &out);
    let path = c.cfg["process"]["env"][0]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("PATH=");
    let path = path.to_string();
    out_is(
        c,
        "exec -e adds to the config's env (PATH kept)",
        &path,
        l.next(),
        &out,
    );
    let out = exec_sh(c, &id, &["--cwd", "/tmp"], "pwd");
    out_is(
        c,
        "exec --cwd sets the cwd",
        "/tmp",
        out.stdout.lines().next(),
        &out,
    );
    let out = exec_sh(c, &id, &["-u", "1000:1001"], "echo $(id -u) $(id -g)");
    out_is(
        c,
        "exec -u sets uid and gid",
        "1000 1001",
        out.stdout.lines().next(),
        &out,
    );
    let out = exec_sh(
        c,
        &id,
        &["--cap", "CAP_SYS_ADMIN"],
        "grep CapEff /proc/self/status",
    );
    c.t.ok(
        cap_eff(&out.stdout).is_some_and(|m| m & (1 << 21) != 0),
        "exec --cap adds CAP_SYS_ADMIN to the effective set",
        format!("{:?}", out.stdout),
    );
    let out = exec_sh(c, &id, &[], "grep CapEff /proc/self/status");
    c.t.ok(
        cap_eff(&out.stdout).is_some_and(|m| m & (1 << 21) == 0 && m & (1 << 5) != 0),
        "exec without --cap has the config's capabilities (CAP_KILL, no CAP_SYS_ADMIN)",
        format!("{:?}", out.stdout),
    );
    let out = exec_sh(c, &id, &[], "exit 7");
    c.t.eq("exec returns the process's exit status", Some(7), out.code);

    let out = c.call(&["exec", &id, "/no/such/binary"]);
    c.fails("exec of a missing binary fails", &out);
    c.status_is("the container keeps running", &id, "running");
    let out = c.call(&["exec", "conf-no-such-container", "true"]);
    c.fails("exec into an unknown id fails", &out);

    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped after KILL", &id, "stopped");
    let out = c.call(&["exec", &id, "true"]);
    c.fails("exec into a stopped container fails", &out);
    c.ok("delete", &c.call(&["delete", &id]));
}

/// A line of an exec's output compared, with the call's status on failure.
fn out_is(c: &mut Case, desc: &str, want: &str, got: Option<&str>, out: &crate::runtime::Out) {
    c.t.ok(
        got == Some(want),
        desc,
        format!("want {want:?}, got {got:?} ({})", out.why()),
    );
}

fn cap_eff(s: &str) -> Option<u64> {
    let hex = s.trim().strip_prefix("CapEff:")?.trim();
    u64::from_str_radix(hex, 16).ok()
}

fn exec_process_file(c: &mut Case) {
    let Some(id) = running(c) else { return };
    let caps = json!(["CAP_KILL", "CAP_CHOWN"]);
    let process = json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["sh", "-c", "echo $CONF_P $(pwd) $(id -u); grep CapEff /proc/self/status"],
        "env": ["PATH=/bin", "CONF_P=from-file"],
        "cwd": "/tmp",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "ambient": caps, "inheritable": caps}
    });
    let path = c.dir.join("process.json");
    if let Err(e) = std::fs::write(&path, process.to_string()) {
        return c.t.error("write process.json", e);
    }
    let p = path.to_string_lossy().into_owned();
    let out = c.call(&["exec", "--process", &p, &id]);
    if c.ok("exec --process succeeds", &out) {
        let mut l = out.stdout.lines();
        c.t.eq(
            "args, env, cwd and user come from the file",
            Some("from-file /tmp 1000"),
            l.next(),
        );
        let want = (1u64 << 5) | 1; // CAP_KILL, CAP_CHOWN, via the ambient set
        c.t.eq(
            "capabilities come from the file",
            Some(want),
            l.next().and_then(cap_eff),
        );
    }
    let bad = c.dir.join("bad-process.json");
    let _ = std::fs::write(&bad, "{\"args\": ");
    let b = bad.to_string_lossy().into_owned();
    c.fails(
        "exec --process with invalid JSON fails",
        &c.call(&["exec", "--process", &b, &id]),
    );
    c.status_is("the container keeps running", &id, "running");
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped after KILL", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
}

/// The "Cpus_allowed_list" value in a status dump.
fn cpus(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(str::trim)
}

/// process.execCPUAffinity (runtime-spec 1.2) is for exec'd processes only:
/// `final` is their affinity once in the container; the init keeps the host's.
fn exec_cpu_affinity(c: &mut Case) {
    let host = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(all) = cpus(&host).map(str::to_string) else {
        return c.t.error("read the driver's Cpus_allowed_list", "missing");
    };
    if all == "0" {
        return c.t.skip("execCPUAffinity", "one CPU: nothing to narrow");
    }
    c.cfg["ociVersion"] = json!("1.2.0");
    c.cfg["process"]["execCPUAffinity"] = json!({"final": "1"});
    sh(
        c,
        "grep Cpus_allowed_list /proc/self/status; echo up; exec sleep 100",
    );
    let id = c.new_id();
    if !c.create_ok("create", &id, &[]) {
        return;
    }
    c.ok("start", &c.call(&["start", &id]));
    if !wait_output(c, &id, "up", 1) {
        return c.t.error("the init runs", "no output");
    }
    let init = c.output(&id);
    c.t.eq(
        "the init keeps the host's CPUs",
        Some(all.as_str()),
        cpus(&init),
    );
    let out = c.call(&[
        "exec",
        &id,
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]);
    c.t.eq(
        "an exec'd process gets execCPUAffinity.final",
        Some("1"),
        cpus(&out.stdout),
    );
    let mut p = c.cfg["process"].clone();
    p["args"] = json!(["grep", "Cpus_allowed_list", "/proc/self/status"]);
    p["execCPUAffinity"] = json!({"initial": "0"});
    let path = c.dir.join("affinity.json");
    let _ = std::fs::write(&path, p.to_string());
    let pf = path.to_string_lossy().into_owned();
    let out = c.call(&["exec", "--process", &pf, &id]);
    c.t.eq(
        "exec --process with only initial keeps that affinity",
        Some("0"),
        cpus(&out.stdout),
    );
    p["execCPUAffinity"] = json!({"initial": "0", "final": "3-1"});
    let _ = std::fs::write(&path, p.to_string());
    let out = c.call(&["exec", "--process", &pf, &id]);
    c.fails("exec with a malformed CPU list (3-1) fails", &out);
    c.status_is("the container keeps running", &id, "running");
    c.call(&["kill", &id, "KILL"]);
    c.wait_status("stopped after KILL", &id, "stopped");
    c.ok("delete", &c.call(&["delete", &id]));
}
