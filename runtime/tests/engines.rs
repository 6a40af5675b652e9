//! What real engines revealed (conformance/engines/): runc extensions they rely on.

mod common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use common::Bundle;
use serde_json::json;

/// podman --read-only mounts /tmp, /run, ... as tmpfs with "tmpcopyup": the
/// tmpfs starts with what the image had there (files, dirs, links, special
/// files, owners and modes), and the copy is the container's, not the image's.
#[test]
fn tmpcopyup_fills_the_tmpfs() {
    let mut b = Bundle::new("copyup");
    let base = b.dir.join("rootfs/data");
    std::fs::create_dir_all(base.join("sub/deep")).unwrap();
    std::fs::write(base.join("sub/deep/f"), "deep-file").unwrap();
    std::fs::write(base.join("suid"), "x").unwrap();
    std::os::unix::fs::chown(base.join("suid"), Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(base.join("suid"), std::fs::Permissions::from_mode(0o4750)).unwrap();
    std::fs::set_permissions(base.join("sub"), std::fs::Permissions::from_mode(0o710)).unwrap();
    symlink("/etc/passwd", base.join("link")).unwrap();
    nix::unistd::mkfifo(
        &base.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "tmpcopyup", "size=1m"]}));
    b.sh(
        "grep -q ' /data .* - tmpfs ' /proc/self/mountinfo && echo tmpfs; \
         cat /data/sub/deep/f; echo; stat -c '%a %u:%g' /data/suid /data/sub; \
         readlink /data/link; stat -c %F /data/fifo; echo new > /data/sub/deep/f",
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(
        out,
        "tmpfs\ndeep-file\n4750 1000:1001\n710 0:0\n/etc/passwd\nfifo\n"
    );
    // The write went to the tmpfs; the image keeps its file.
    let kept = std::fs::read_to_string(base.join("sub/deep/f")).unwrap();
    assert_eq!(kept, "deep-file");
    assert_eq!(std::fs::metadata(base.join("suid")).unwrap().uid(), 1000);
    b.assert_clean();
}

#[test]
fn tmpcopyup_on_a_missing_directory_gives_an_empty_tmpfs() {
    let mut b = Bundle::new("copyup-new");
    b.config["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/fresh", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    b.sh("ls -A /fresh; echo end");
    let (code, out, err) = b.run();
    assert_eq!((code, out.as_str()), (0, "end\n"), "stderr: {err}");
    b.assert_clean();
}

#[test]
fn tmpcopyup_outside_tmpfs_is_refused() {
    let b = Bundle::new("copyup-bad");
    let mut b = b;
    b.config["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/mq", "type": "mqueue", "source": "mqueue", "options": ["tmpcopyup"]}));
    let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(err.contains("tmpcopyup") && err.contains("/mq"), "{err}");
    b.assert_clean();

    let host = b.dir.join("host");
    std::fs::create_dir_all(&host).unwrap();
    b.config["mounts"].as_array_mut().unwrap().pop();
    b.config["mounts"].as_array_mut().unwrap().push(json!(
        {"destination": "/b", "type": "bind", "source": host, "options": ["rbind", "tmpcopyup"]}));
    let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &b.id()]);
    assert!(err.contains("tmpcopyup") && err.contains("/b"), "{err}");
    b.assert_clean();
}

/// dockerd passes `--root <exec-root>/runtime-<name>/moby`, whose parents
/// the runtime creates (mode 0700, as runc).
#[test]
fn state_root_parents_are_created() {
    let mut b = Bundle::new("deeproot");
    b.root = b.dir.join("exec/runtime-berth/moby");
    b.args(&["true"]);
    let (code, _, err) = b.run();
    assert_eq!(code, 0, "{err}");
    let mode = std::fs::metadata(b.dir.join("exec/runtime-berth"))
        .unwrap()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    b.assert_clean();
}

/// The shims force-delete after a failed create; like runc, `delete --force`
/// of an id that does not exist succeeds, without --force it is an error,
/// and a bad id is an error either way.
#[test]
fn force_delete_of_a_missing_container() {
    let b = Bundle::new("fdel");
    b.ok(&["delete", "--force", "never-created"]);
    let err = b.fails(&["delete", "never-created"]);
    assert!(err.contains("does not exist: never-created"), "{err}");
    let err = b.fails(&["delete", "-f", "../x"]);
    assert!(err.contains("invalid id"), "{err}");
    b.assert_clean();
}
