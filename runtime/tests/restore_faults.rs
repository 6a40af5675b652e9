//! `restore` killed while CRIU runs. restore binds the rootfs onto
//! <state dir>/criu-root for CRIU; if berth dies before it unmounts that,
//! `delete -f` of the id must still leave nothing behind, and above all must
//! not delete the bundle's rootfs through the bind while removing the
//! state directory. A stand-in `criu` (first in PATH) that only waits
//! holds restore in that window; nothing here needs a real checkpoint.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{berth_bin, Bundle};

#[test]
fn restore_killed_while_criu_runs_leaves_nothing_and_keeps_the_rootfs() {
    for sig in [libc::SIGKILL, libc::SIGTERM] {
        let b = Bundle::new("restorekill");
        let img = b.dir.join("img");
        std::fs::create_dir(&img).unwrap();
        std::fs::write(
            img.join("descriptors.json"),
            "[\"/dev/null\",\"/dev/null\",\"/dev/null\"]",
        )
        .unwrap();
        let fake = b.dir.join("fakebin");
        std::fs::create_dir(&fake).unwrap();
        let criu = fake.join("criu");
        // `criu check` (feature probes) succeeds; anything else waits.
        std::fs::write(
            &criu,
            "#!/bin/sh\ncase \"$1\" in check|--version|-V) exit 0;; esac\necho $$ > \"$0.pid\"\nexec sleep 60\n",
        )
        .unwrap();
        std::fs::set_permissions(&criu, std::fs::Permissions::from_mode(0o755)).unwrap();
        b.write();
        let id = b.id();
        let path = format!(
            "{}:{}",
            fake.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(berth_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["restore", "-d", "-b", b.dir.to_str().unwrap()])
            .arg("--image-path")
            .arg(&img)
            .arg(&id)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for CRIU's root mount: restore is now inside the window.
        let criu_root = b.root.join(&id).join("criu-root");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mounted = || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .contains(criu_root.to_str().unwrap())
        };
        while !mounted() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(mounted(), "restore never reached criu");
        // SAFETY: signalling the child we spawned.
        unsafe { libc::kill(child.id() as i32, sig) };
        let _ = child.wait();
        // The stand-in criu may outlive berth (SIGKILL); end it.
        if let Ok(pid) = std::fs::read_to_string(fake.join("criu.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                // SAFETY: signalling the stand-in this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let out = b.berth(&["delete", "-f", &id]);
        assert!(
            b.dir.join("rootfs/bin/busybox").exists(),
            "signal {sig}: delete -f removed the rootfs through the CRIU bind (delete: {:?})",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "signal {sig}: {out:?}");
        b.assert_clean();
    }
}
