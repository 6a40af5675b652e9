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

/// CVE-2019-5736 through an entrypoint script starting `#!/proc/self/exe`:
/// the kernel would run the init's own executable, the host's berth, as the
/// container process, dumpable after execve. Kernels differ: this one (and
/// every kernel this has been tried on) refuses the exec; if a kernel lets
/// it through, this test fails and berth needs a sealed binary (see
/// process/mod.rs).
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
