//! The environment hooks run with.

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
