//! The command line itself: help, version, and what a mistake prints (on
//! stderr for a person, as one line in --log for engines).

use std::process::{Command, Output};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");

fn berth(args: &[&str]) -> Output {
    Command::new(BERTH)
        .args(["--root", "/nonexistent/berth-cli-test"])
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn no_command_prints_usage_and_commands() {
    let out = Command::new(BERTH).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("Usage: berth [OPTIONS] <COMMAND>"), "{help}");
    for cmd in ["create", "run", "exec", "checkpoint", "features"] {
        assert!(help.contains(&format!("\n  {cmd} ")), "{cmd}: {help}");
    }
    assert!(help.contains("Global options"), "{help}");
}

#[test]
fn version_with_v_as_runc() {
    for flag in ["-v", "--version"] {
        let out = Command::new(BERTH).arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}");
        assert!(text(&out.stdout).starts_with("berth "), "{flag}");
    }
}

#[test]
fn mistakes_suggest_and_point_to_help() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "--bundel", "x", "id"],
            "berth: unexpected argument '--bundel' found; tip: a similar argument exists: '--bundle'",
        ),
        (
            &["strat", "id"],
            "berth: unrecognized subcommand 'strat'; tip: some similar subcommands exist: 'create', 'state', 'start'",
        ),
        (
            &["kill"],
            "berth: the following required arguments were not provided: <CONTAINER-ID>",
        ),
        (
            &["update", "--l3-cache-schema", "L3:0=f", "id"],
            "berth: unexpected argument '--l3-cache-schema' found",
        ),
    ];
    for (args, first) in cases {
        let out = berth(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        let mut lines = err.lines();
        assert!(
            lines.next().is_some_and(|l| l.starts_with(first)),
            "{args:?}: {err}"
        );
        assert_eq!(
            lines.last(),
            Some("For more information, try '--help'."),
            "{err}"
        );
    }
}

#[test]
fn a_refused_command_line_reaches_the_log_as_one_line() {
    let dir = std::env::temp_dir().join(format!("berth-cli-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.json");
    let log_s = log.to_str().unwrap();
    let out = berth(&[
        "--log",
        log_s,
        "--log-format",
        "json",
        "run",
        "--bundel",
        "x",
        "id",
    ]);
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["level"], "error");
    assert_eq!(
        v["msg"],
        "unexpected argument '--bundel' found; tip: a similar argument exists: '--bundle'"
    );
}

#[test]
fn runc_global_flags_are_accepted() {
    for v in ["true", "false", "auto"] {
        let out = berth(&["--rootless", v, "list", "-q"]);
        assert!(
            out.status.success(),
            "--rootless {v}: {}",
            text(&out.stderr)
        );
    }
    let out = berth(&["--rootless", "maybe", "list"]);
    assert!(text(&out.stderr).starts_with("berth: invalid value 'maybe' for '--rootless"));
    let out = berth(&["--criu", "/usr/sbin/criu", "list", "-q"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // spec's own --rootless is a flag, runc's global one takes a value.
    let dir = std::env::temp_dir().join(format!("berth-cli-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = berth(&[
        "--rootless",
        "true",
        "spec",
        "--rootless",
        "-b",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spec = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(spec.contains("uidMappings"), "{spec}");
}

#[test]
fn help_says_what_the_options_do() {
    let out = berth(&["exec", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("-t, --tty"), "{help}");
    assert!(!help.contains("needs --console-socket"), "{help}");
    let out = berth(&["--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("--systemd-cgroup"), "{help}");
    assert!(help.contains("transient systemd scope"), "{help}");
    // Each command's help starts with its own summary.
    for (cmd, about) in [
        ("start", "Start a created container"),
        ("pause", "Freeze every process"),
        ("update", "Change a live container's cgroup limits"),
        ("run", "Create and start a container"),
        ("checkpoint", "Checkpoint a running container"),
        ("restore", "Restore a container"),
        ("exec", "Run a process in a running container"),
    ] {
        let help = text(&berth(&[cmd, "--help"]).stdout);
        assert!(help.starts_with(about), "{cmd}: {help}");
    }
    let help = text(&berth(&["update", "--help"]).stdout);
    assert!(
        !help.contains("l3-cache") && !help.contains("mem-bw"),
        "{help}"
    );
}

/// build.rs links berth statically. A static link that goes wrong (a
/// library ld resolved to its .so) gives a binary that crashes at once or
/// still needs ld.so.
#[cfg(static_berth)]
#[test]
fn berth_is_static_and_starts() {
    // ld.so lists a dynamic binary's libraries instead of running it; a
    // static binary ignores the variable and runs.
    let out = Command::new(BERTH)
        .arg("--version")
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{:?}\n{stdout}", out.status);
    assert!(stdout.starts_with("berth "), "{stdout}");
}
