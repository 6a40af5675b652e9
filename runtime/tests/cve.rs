//! Regressions for runc CVE classes not covered in hardening.rs.

mod common;

use common::Bundle;
use serde_json::json;

/// CVE-2024-21626 with berth's own fds: during setup the init holds host
/// fds (its channel, the exec fifo, the host /proc). A cwd of
/// /proc/self/fd/N must never put the process in a host directory: either
/// the container fails to start or its cwd is inside its root.
#[test]
fn cve_2024_21626_own_fds_as_cwd() {
    for n in 3..=16 {
        let mut b = Bundle::new("cvecwd");
        b.config["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        b.sh("pwd; ls -a .. | head -50");
        let (code, out, err) = b.run();
        assert!(
            !out.contains("unreachable"),
            "fd {n}: cwd outside the root: {out}"
        );
        if code == 0 {
            assert!(
                !out.contains("vmlinuz") && !out.contains("berth-test"),
                "fd {n}: {out}"
            );
        } else {
            assert!(err.starts_with("berth: "), "fd {n}: {err}");
        }
        b.assert_clean();
    }
}

/// The same through `exec --cwd`, which joins a running container.
#[test]
fn cve_2024_21626_own_fds_as_exec_cwd() {
    let mut b = Bundle::new("cveexeccwd");
    b.sh("sleep 1000");
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    for n in 3..=16 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = b.berth(&["exec", "--cwd", &cwd, &id, "sh", "-c", "pwd; ls -a .."]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("unreachable"), "fd {n}: {text}");
        assert!(!text.contains("berth-test"), "fd {n}: {text}");
    }
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
}

/// CVE-2019-5736 at its root: until its final execve the init runs the
/// image of the berth that cloned it, and an entrypoint `#!/proc/self/exe`
/// (or an ELF interpreter of that path) makes the kernel load exactly that
/// file into the container. The attack then holds /proc/PID/exe open and
/// writes through it once the process is gone. Done here from the host
/// with the created init: before the fix the reopen for writing succeeded
/// (nothing is written); now the file sits on a read-only mount (EROFS) or
/// in a sealed memfd (EPERM).
#[test]
fn cve_2019_5736_the_init_runs_from_a_sealed_binary() {
    use std::os::unix::fs::OpenOptionsExt;
    let mut b = Bundle::new("cve5736seal");
    b.args(&["sleep", "100"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    let state: serde_json::Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(format!("/proc/{pid}/exe"))
        .unwrap();
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
    use std::os::fd::AsRawFd;
    let reopen = format!("/proc/self/fd/{}", held.as_raw_fd());
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&reopen)
        .expect_err("the binary the init ran from can be opened for writing");
    let errno = err.raw_os_error();
    assert!(
        errno == Some(libc::EROFS) || errno == Some(libc::EPERM),
        "want EROFS or EPERM (sealed), got {err}"
    );
}

/// CVE-2019-5736 through an entrypoint script starting `#!/proc/self/exe`,
/// end to end: this busybox rootfs has no ld.so, so the dynamic berth the
/// kernel picks as interpreter cannot start and the exec fails in the init.
/// That is luck, not a defence (a static binary, like the shim, or a rootfs
/// with a loader runs it): the defence is the sealed binary checked above.
#[test]
fn cve_2019_5736_shebang_to_proc_self_exe_never_runs_berth() {
    let mut b = Bundle::new("cve5736");
    let evil = b.dir.join("rootfs/bin/evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.args(&["/bin/evil"]);
    let (code, out, err) = b.run();
    assert_ne!(code, 0, "the host binary ran in the container: {out} {err}");
    assert!(
        err.contains("container init: exec \"/bin/evil\""),
        "the exec must fail in the init, not run berth: {err}"
    );
    b.assert_clean();
}
