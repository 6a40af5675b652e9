//! Inputs that used to fail late, silently or unclearly: each is refused up
//! front with a one-line error naming its cause, and leaves nothing behind.

mod common;

use common::Bundle;
use serde_json::json;

/// runc refuses a rootfs that is the host's "/"; berth used to fail late.
#[test]
fn root_that_is_or_links_to_slash_is_refused() {
    for how in ["slash", "link"] {
        let mut b = Bundle::new("rootslash");
        let path = match how {
            "slash" => "/".to_string(),
            _ => {
                std::os::unix::fs::symlink("/", b.dir.join("hostroot")).unwrap();
                "hostroot".to_string()
            }
        };
        b.config["root"]["path"] = json!(path);
        let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(
            err.contains("root.path") && err.contains("host's root"),
            "{err}"
        );
        b.assert_clean();
    }
}

/// A profile answering execve with a kill or an error: runc 1.1 hangs
/// (kill) or fails late with "container process is already dead" (errno);
/// `run -d` used to exit 0 with nothing running.
#[test]
fn seccomp_profile_denying_execve_is_refused() {
    for action in ["SCMP_ACT_KILL", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"] {
        let mut b = Bundle::new("seccompall");
        b.config["linux"]["seccomp"] =
            json!({"defaultAction": action, "architectures": ["SCMP_ARCH_X86_64"]});
        let err = b.fails(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
        assert!(
            err.contains("execve") && err.contains("defaultAction"),
            "{err}"
        );
        b.assert_clean();
    }
    // An explicit rule for execve decides, whatever the default.
    let mut b = Bundle::new("seccompallow");
    b.sh("sleep 1000");
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ERRNO"}],
    });
    let err = b.fails(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(err.contains("syscalls[0].action"), "{err}");
    b.assert_clean();
}

#[test]
fn log_to_an_unwritable_path_is_an_error() {
    let b = Bundle::new("badlog");
    let log = b.dir.join("no/such/dir/berth.log");
    let err = b.fails(&["--log", log.to_str().unwrap(), "list"]);
    assert!(
        err.contains("--log") && err.contains("No such file"),
        "{err}"
    );
}

/// `--preserve-fds -3` used to close the container's stdio.
#[test]
fn negative_preserve_fds_is_refused() {
    let mut b = Bundle::new("negfds");
    b.sh("sleep 1000");
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    let err = b.fails(&["run", "-d", "--preserve-fds=-3", "-b", &dir, &id]);
    assert!(err.contains("--preserve-fds -3"), "{err}");
    b.assert_clean();
    b.ok(&["run", "-d", "-b", &dir, &id]);
    let err = b.fails(&["exec", "--preserve-fds=-1", &id, "true"]);
    assert!(err.contains("--preserve-fds -1"), "{err}");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}
