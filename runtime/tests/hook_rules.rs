//! How hooks run: their environment, and what a failing poststart hook means.

mod common;

use common::Bundle;
use serde_json::json;

/// A startContainer hook without `env` gets the container process's
/// environment, as with runc; one with `env` gets exactly that.
#[test]
fn start_container_hook_env() {
    let mut b = Bundle::new("hookenv");
    b.config["process"]["env"] = json!(["PATH=/bin", "FROM_PROCESS=yes"]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    // startContainer runs in the container's mount namespace, so the files
    // land in the container's /tmp, where the process reads them.
    b.config["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "env | sort > /tmp/inherited"]},
        {"path": "/bin/sh", "args": ["sh", "-c", "env | sort > /tmp/own"], "env": ["OWN=1"]}
    ]});
    b.sh("cat /tmp/inherited; echo --; cat /tmp/own");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let (inherited, own) = out.split_once("--\n").unwrap();
    assert!(inherited.lines().any(|l| l == "FROM_PROCESS=yes"), "{out}");
    assert!(inherited.lines().any(|l| l == "PATH=/bin"), "{out}");
    assert!(own.lines().any(|l| l == "OWN=1"), "{out}");
    assert!(!own.contains("FROM_PROCESS"), "{out}");
    b.assert_clean();
}

/// A host-side hook (createRuntime here) without `env` gets berth's own
/// environment, as runc's hooks get runc's; `"env": []` gets none at all.
#[test]
fn host_hook_without_env_inherits_berths() {
    let mut b = Bundle::new("hookhostenv");
    let dir = b.dir.display().to_string();
    b.config["hooks"] = json!({"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", format!("env > {dir}/inherited")]},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("env > {dir}/empty")], "env": []}
    ]});
    b.sh("true");
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let read = |f: &str| std::fs::read_to_string(b.dir.join(f)).unwrap();
    let (inherited, empty) = (read("inherited"), read("empty"));
    let path = format!("PATH={}", std::env::var("PATH").unwrap());
    assert!(inherited.lines().any(|l| l == path), "{inherited}");
    assert!(!inherited.contains("_BERTH_"), "{inherited}");
    // sh itself sets PWD, SHLVL and the like; nothing of berth's is there.
    assert!(!empty.lines().any(|l| l.starts_with("PATH=/")), "{empty}");
    b.assert_clean();
}

/// A failing poststart hook: up to runtime-spec 1.2 a warning and the
/// container runs on; from 1.3.0 (the config's ociVersion) an error that
/// stops the container, which `delete` then removes (poststop runs).
#[test]
fn poststart_failure_by_oci_version() {
    for (version, fatal) in [("1.2.0", false), ("1.3.0", true)] {
        let mut b = Bundle::new("poststartfail");
        b.config["ociVersion"] = json!(version);
        b.args(&["sleep", "100"]);
        let marker = b.dir.join("poststop-ran");
        b.config["hooks"] = json!({
            "poststart": [{"path": "/bin/false"}],
            "poststop": [{"path": "/bin/touch", "args": ["touch", marker.to_str().unwrap()]}]
        });
        let id = b.id();
        b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
        let out = b.berth(&["start", &id]);
        let err = String::from_utf8_lossy(&out.stderr);
        if fatal {
            assert!(!out.status.success(), "{version}: start succeeded");
            assert!(err.contains("poststart"), "{version}: {err}");
            assert_eq!(b.status(), "stopped", "{version}");
            b.ok(&["delete", &id]);
            assert!(marker.exists(), "{version}: poststop did not run");
        } else {
            assert!(out.status.success(), "{version}: {err}");
            // Without --log, the warning goes to stderr, as runc's does.
            assert!(
                err.contains("level=warning") && err.contains("poststart hook #0"),
                "{version}: the failing hook was not reported: {err}"
            );
            assert_eq!(b.status(), "running", "{version}");
            b.ok(&["delete", "-f", &id]);
        }
        b.assert_clean();
        // `run` of a 1.3 container cleans up after itself.
        if fatal {
            let run = b.berth(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
            assert!(!run.status.success(), "{version}: run -d succeeded");
            b.assert_clean();
        }
    }
}
