//! Bad input gets a clear one-line error, a non-zero exit, and leaves
//! nothing behind: no state dir, mount, cgroup or process.

mod common;

use common::Bundle;
use serde_json::json;

fn create_fails(b: &Bundle) -> String {
    let id = b.id();
    let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    b.assert_clean();
    err
}

#[test]
fn malformed_config() {
    let b = Bundle::new("badjson");
    b.write();
    std::fs::write(
        b.dir.join("config.json"),
        b"{\"ociVersion\": \"1.0.2\", \"process\": [",
    )
    .unwrap();
    // `fails` rewrites config.json, so call berth by hand here.
    let out = std::process::Command::new(common::berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["create", "-b", b.dir.to_str().unwrap(), "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("config.json"), "{err}");
    b.assert_clean();
}

#[test]
fn missing_config() {
    let b = Bundle::new("nocfg");
    let empty = b.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = b.fails(&["create", "-b", empty.to_str().unwrap(), "x"]);
    assert!(err.contains("config.json"), "{err}");
    b.assert_clean();
}

#[test]
fn missing_bundle() {
    let b = Bundle::new("nobundle");
    let err = b.fails(&["create", "-b", "/nonexistent/bundle", "x"]);
    assert_eq!(
        err,
        "berth: bundle /nonexistent/bundle: No such file or directory (os error 2)"
    );
    b.assert_clean();
}

#[test]
fn missing_rootfs() {
    let mut b = Bundle::new("norootfs");
    b.config["root"]["path"] = json!("no-such-rootfs");
    let err = create_fails(&b);
    assert!(err.contains("no-such-rootfs"), "{err}");
}

/// As runc: a rootfs that is a symlink (or under one) below the bundle is
/// refused, not followed.
#[test]
fn symlinked_rootfs_is_refused() {
    let mut b = Bundle::new("symroot");
    std::os::unix::fs::symlink("rootfs", b.dir.join("rootfs-link")).unwrap();
    b.config["root"]["path"] = json!("rootfs-link");
    let err = create_fails(&b);
    assert!(
        err.starts_with("berth: invalid configuration: root.path: rootfs ")
            && err.contains("rootfs-link is a symlink or under one"),
        "{err}"
    );
    // A plain rootfs given with "." and ".." is no symlink.
    b.config["root"]["path"] = json!("./rootfs/../rootfs");
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn bad_ids() {
    let b = Bundle::new("badid");
    for id in ["", "..", "a/b", "../escape", "sp ace"] {
        let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), id]);
        assert!(err.contains("invalid id"), "{id:?}: {err}");
        b.fails(&["state", id]);
    }
    b.assert_clean();
    assert!(!std::path::Path::new("/tmp/berth-test/escape").exists());
}

#[test]
fn taken_id() {
    let mut b = Bundle::new("taken");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains("already exists"), "{err}");
    // The first container is untouched.
    assert_eq!(b.status(), "created");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn unknown_signal() {
    let mut b = Bundle::new("badsig");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    for s in ["SIGFOO", "0", "99", "TERMX", "RTMAX+1"] {
        let err = b.fails(&["kill", &id, s]);
        assert!(err.contains("invalid signal"), "{err}");
    }
    assert_eq!(b.status(), "created");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn start_twice_and_start_stopped() {
    let mut b = Bundle::new("start2");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    b.ok(&["start", &id]);
    let err = b.fails(&["start", &id]);
    assert!(err.contains("running"), "{err}");
    b.ok(&["kill", &id, "KILL"]);
    while b.status() != "stopped" {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let err = b.fails(&["start", &id]);
    assert!(err.contains("stopped"), "{err}");
    b.ok(&["delete", &id]);
    b.assert_clean();
}

#[test]
fn delete_without_force_refuses_running_containers() {
    let mut b = Bundle::new("delnf");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let err = b.fails(&["delete", &id]);
    assert!(err.contains("not stopped: running"), "{err}");
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

#[test]
fn unknown_namespace_type() {
    let mut b = Bundle::new("badns");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    let err = create_fails(&b);
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn missing_executable() {
    let mut b = Bundle::new("noexec");
    b.args(&["/bin/does-not-exist"]);
    let err = create_fails(&b);
    assert!(err.contains("does-not-exist"), "{err}");
    // The init's own error is wrapped once, not once per process it crossed.
    assert_eq!(err.matches("container init:").count(), 1, "{err}");
}

#[test]
fn unsupported_field_is_named() {
    let mut b = Bundle::new("unsup");
    b.config["linux"]["intelRdt"] = json!({"closID": "berth"});
    let err = create_fails(&b);
    assert!(err.contains("linux.intelRdt"), "{err}");
}

#[test]
fn failing_mount_leaves_nothing() {
    let mut b = Bundle::new("badmount");
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/mnt", "type": "bogusfs", "source": "none"}));
    let err = create_fails(&b);
    assert!(err.contains("/mnt"), "{err}");
}

#[test]
fn unknown_capability() {
    let mut b = Bundle::new("badcap");
    b.config["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_TEST"));
    let err = create_fails(&b);
    assert!(err.contains("CAP_TEST"), "{err}");
}

#[test]
fn hostname_without_uts_namespace() {
    let mut b = Bundle::new("nouts");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "uts");
    let err = create_fails(&b);
    assert!(err.contains("UTS"), "{err}");
}

#[test]
fn spec_level_requirements() {
    let mut b = Bundle::new("ociver");
    b.config["ociVersion"] = json!("invalid");
    let err = create_fails(&b);
    assert!(err.contains("ociVersion"), "{err}");
    let mut b = Bundle::new("relcwd");
    b.config["process"]["cwd"] = json!("tmp");
    let err = create_fails(&b);
    assert!(err.contains("process.cwd"), "{err}");
    let mut b = Bundle::new("ioprio");
    b.config["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9});
    let err = create_fails(&b);
    assert!(err.contains("ioPriority"), "{err}");
}

/// A bundle with no mount namespace and nothing that needs one.
fn without_mount_namespace(tag: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "mount");
    b.config["mounts"] = json!([]);
    b.config["root"]["readonly"] = json!(false);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b
}

/// Without a mount namespace, a read-only root, maskedPaths and
/// readonlyPaths would need mounts in the host's namespace: refused up
/// front, naming the field (it failed inside the init, and the reason was
/// lost behind "sync: send: Broken pipe"). Without them the container runs.
#[test]
fn mount_namespace_fields_without_one() {
    let cases = [
        (
            "nomntro",
            "root.readonly",
            json!({"root": {"readonly": true}}),
        ),
        (
            "nomntmask",
            "linux.maskedPaths",
            json!({"linux": {"maskedPaths": ["/proc/kcore"]}}),
        ),
        (
            "nomntrop",
            "linux.readonlyPaths",
            json!({"linux": {"readonlyPaths": ["/proc/sys"]}}),
        ),
    ];
    for (tag, field, set) in cases {
        let mut b = without_mount_namespace(tag);
        for (section, fields) in set.as_object().unwrap() {
            for (k, v) in fields.as_object().unwrap() {
                b.config[section][k] = v.clone();
            }
        }
        let err = create_fails(&b);
        assert!(
            err.contains(field) && err.contains("requires a mount namespace"),
            "{tag}: {err}"
        );
    }
    let mut b = without_mount_namespace("nomntok");
    b.args(&["true"]);
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    b.assert_clean();
}

/// `checkpoint --parent-path` is checked before CRIU runs, as runc does:
/// relative to --image-path, an existing directory. The container runs on.
#[test]
fn checkpoint_parent_path_is_checked() {
    let mut b = Bundle::new("cpparent");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let images = b.dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("file"), "").unwrap();
    for (parent, want) in [
        ("/abs", "must be relative"),
        ("../nope", "No such file"),
        ("file", "is not a directory"),
    ] {
        let err = b.fails(&[
            "checkpoint",
            "--image-path",
            images.to_str().unwrap(),
            "--parent-path",
            parent,
            &id,
        ]);
        assert!(
            err.contains("--parent-path") && err.contains(want),
            "{parent}: {err}"
        );
    }
    assert_eq!(b.status(), "running");
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}
