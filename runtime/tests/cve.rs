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
/// with the created init: before the fix that file was the writable
/// binary itself; now it sits on a read-only mount or in a sealed memfd.
///
/// berth seals itself at its entry point, before libc starts, and gives
/// that up for anything unusual (here an environment too large for its
/// fixed buffers), leaving it to the check after the command line is
/// parsed: both ways must end in a sealed binary.
#[test]
fn cve_2019_5736_the_init_runs_from_a_sealed_binary() {
    for extra_env in [0, 1500] {
        init_runs_from_a_sealed_binary(extra_env);
    }
}

fn init_runs_from_a_sealed_binary(extra_env: usize) {
    let mut b = Bundle::new("cve5736seal");
    b.args(&["sleep", "100"]);
    b.write();
    let id = b.id();
    let status = std::process::Command::new(common::berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["create", "-b", b.dir.to_str().unwrap(), &id])
        .envs((0..extra_env).map(|i| (format!("CVE5736_FILLER_{i}"), "x")))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "create with {extra_env} more variables: {status:?}"
    );
    let state: serde_json::Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let held = hold_exe(pid);
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
    assert!(
        write_refused(&held),
        "with {extra_env} more variables, the binary the init ran from is writable (not on a read-only mount, not a sealed memfd)"
    );
}

/// Whether the kernel would refuse a write to the file `held` (an O_PATH
/// fd) names: a read-only mount (EROFS) or a memfd sealed against writes
/// (EPERM). Asked directly, as an open for writing says ETXTBSY first
/// while any berth runs from the file (other tests do).
fn write_refused(held: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    let ro = nix::sys::statvfs::fstatvfs(held)
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_RDONLY);
    let file = std::fs::File::open(format!("/proc/self/fd/{}", held.as_raw_fd())).unwrap();
    let sealed = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GET_SEALS).is_ok_and(|s| {
        nix::fcntl::SealFlag::from_bits_truncate(s).contains(nix::fcntl::SealFlag::F_SEAL_WRITE)
    });
    ro || sealed
}

/// A handle on the file process `pid` runs from, as an attacker in the
/// container would keep one (O_PATH: it does not block the writer).
fn hold_exe(pid: impl std::fmt::Display) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(format!("/proc/{pid}/exe"))
        .unwrap()
}

/// What the `#!/proc/self/exe` attack on a static berth must show: the
/// process in the container ran berth's own binary (`running`, read from
/// its /proc/PID/exe), which printed its usage error about `/bin/evil`
/// (`err`, after the filler), from a file (`held`) no write can reach.
#[cfg(static_berth)]
fn assert_only_sealed_berth_ran(held: &std::fs::File, running: &[u8], err: &[u8]) {
    let host = std::fs::read(common::berth_bin()).unwrap();
    assert!(running == host, "what ran in the container is not berth");
    assert!(
        tail(err).contains("/bin/evil"),
        "berth's usage error expected: {}",
        tail(err)
    );
    assert!(
        write_refused(held),
        "berth ran in the container from a writable file (not on a read-only mount, not a sealed memfd)"
    );
}

/// A bundle whose entrypoint is a script starting `#!/proc/self/exe`.
fn shebang_bundle(tag: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    let evil = b.dir.join("rootfs/bin/evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.args(&["/bin/evil"]);
    b
}

/// CVE-2019-5736 through an entrypoint script starting `#!/proc/self/exe`,
/// end to end, for a dynamic berth (`BERTH_LINK=dynamic`): this busybox
/// rootfs has no ld.so, so the berth the kernel picks as interpreter
/// cannot start and the exec fails in the init. That is luck, not a
/// defence (a rootfs with a loader runs it): the defence is the sealed
/// binary checked above.
#[cfg(not(static_berth))]
#[test]
fn cve_2019_5736_shebang_to_proc_self_exe_never_runs_berth() {
    let b = shebang_bundle("cve5736");
    let (code, out, err) = b.run();
    // For the log: ENOENT on every kernel tried (6.1, 6.18), as the rootfs
    // has no ld.so for a dynamic berth.
    eprintln!("#!/proc/self/exe on {}: {}", kernel(), err.trim());
    assert_ne!(code, 0, "the host binary ran in the container: {out} {err}");
    assert!(
        err.contains("container init: exec \"/bin/evil\""),
        "the exec must fail in the init, not run berth: {err}"
    );
    b.assert_clean();
}

/// The same attack on a static berth (the default), which starts in any
/// rootfs: the kernel does run berth in the container, so what matters is
/// which file. The container's stderr is a pipe filled beforehand, so the
/// berth started there blocks writing its usage error while the test,
/// holding its /proc/PID/exe as the attack would, checks that this is
/// berth's binary and that no write can reach it.
#[cfg(static_berth)]
#[test]
fn cve_2019_5736_shebang_to_proc_self_exe_runs_only_the_sealed_copy() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let b = shebang_bundle("cve5736st");
    b.write();
    let id = b.id();
    // Close-on-exec, or a container another test starts meanwhile would
    // hold the write end and the read below would never see its end.
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    fill(&wr);
    let mut create = std::process::Command::new(common::berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["create", "-b", b.dir.to_str().unwrap(), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::from(wr))
        .spawn()
        .unwrap();
    let mut rd = std::fs::File::from(rd);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = create.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // Blocked on its own error message: let it finish and show it.
            let _ = create.kill();
            let mut err = Vec::new();
            let _ = rd.read_to_end(&mut err);
            panic!("create hung: {}", tail(&err));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "create failed: {status:?}");
    let state: serde_json::Value = serde_json::from_str(&b.ok(&["state", &id])).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    b.ok(&["start", &id]);

    // The init execs /bin/evil; the kernel runs /proc/self/exe /bin/evil.
    let cmdline = format!("/proc/{pid}/cmdline");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read(&cmdline).is_ok_and(|c| c.starts_with(b"/proc/self/exe\0/bin/evil\0")) {
        assert!(
            Instant::now() < deadline,
            "berth did not start in the container: {:?}",
            std::fs::read_to_string(&cmdline)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let held = hold_exe(pid);
    let running = std::fs::read(format!("/proc/{pid}/exe")).unwrap();
    let mut err = Vec::new();
    rd.read_to_end(&mut err).unwrap();
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
    eprintln!("#!/proc/self/exe on {}: {}", kernel(), tail(&err).trim());
    assert_only_sealed_berth_ran(&held, &running, &err);
}

/// The same through `exec`, whose process is a clone of the berth that
/// runs `exec` (the command line is `exec`'s, which the entry point reads
/// to decide whether to seal): `/bin/evil` exec'd into a running container
/// runs berth in it, blocked on a full stderr, from a file no write can
/// reach.
#[cfg(static_berth)]
#[test]
fn cve_2019_5736_shebang_through_exec_runs_only_the_sealed_copy() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let mut b = shebang_bundle("cve5736ex");
    b.args(&["sleep", "1000"]);
    let id = b.id();
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &id]);
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    fill(&wr);
    let mut exec = std::process::Command::new(common::berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["exec", &id, "/bin/evil"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::from(wr))
        .spawn()
        .unwrap();
    // The exec'd process is berth's child, and then runs
    // /proc/self/exe /bin/evil.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", exec.id()))
            .unwrap_or_default();
        let evil = children.split_whitespace().find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"/proc/self/exe\0/bin/evil\0"))
        });
        if let Some(p) = evil {
            break p.to_string();
        }
        if Instant::now() > deadline || exec.try_wait().unwrap().is_some() {
            let _ = exec.kill();
            let mut err = Vec::new();
            let _ = std::fs::File::from(rd).read_to_end(&mut err);
            b.ok(&["delete", "-f", &id]);
            panic!("berth did not start in the container: {}", tail(&err));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let held = hold_exe(&pid);
    let running = std::fs::read(format!("/proc/{pid}/exe")).unwrap();
    let mut err = Vec::new();
    std::fs::File::from(rd).read_to_end(&mut err).unwrap();
    let _ = exec.wait();
    b.ok(&["delete", "-f", &id]);
    b.assert_clean();
    assert_only_sealed_berth_ran(&held, &running, &err);
}

/// Fill a pipe, leaving its write end blocking.
#[cfg(static_berth)]
fn fill(wr: &std::os::fd::OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    fcntl(wr, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let block = [b'.'; 4096];
    while nix::unistd::write(wr, &block).is_ok() {}
    fcntl(wr, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
}

/// What was written after the filler.
#[cfg(static_berth)]
fn tail(out: &[u8]) -> String {
    let start = out.iter().position(|&c| c != b'.').unwrap_or(out.len());
    String::from_utf8_lossy(&out[start..]).into_owned()
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The config's /dev replaced by a bind of `dev` (a directory the image
/// controls): berth then makes no device nodes, so whatever is at /dev/null
/// is what masking would use. All other /dev mounts are kept.
fn bind_own_dev(b: &mut Bundle, dev: &std::path::Path) {
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/dev");
    mounts.insert(
        0,
        json!({"destination": "/dev", "type": "bind", "source": dev, "options": ["rbind"]}),
    );
}

/// CVE-2025-31133: files in maskedPaths are hidden under the container's
/// /dev/null. If that is a symlink (to a procfs file such as core_pattern,
/// or any file) or not the null device at all, masking must not bind it:
/// the container either fails with a reason or sees the real null device.
#[test]
fn cve_2025_31133_masking_never_binds_a_fake_dev_null() {
    use std::os::unix::fs::symlink;
    type Make = fn(&std::path::Path);
    let cases: [(&str, Make); 4] = [
        ("symlink to a procfs file", |p| {
            symlink("/proc/sys/kernel/core_pattern", p).unwrap()
        }),
        ("symlink to a file", |p| symlink("/secret", p).unwrap()),
        ("regular file", |p| std::fs::write(p, "fake-null").unwrap()),
        ("another device (zero)", |p| {
            nix::sys::stat::mknod(
                p,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 5),
            )
            .unwrap()
        }),
    ];
    for (what, make) in cases {
        let mut b = Bundle::new("cve31133");
        let dev = b.dir.join("imagedev");
        std::fs::create_dir(&dev).unwrap();
        make(&dev.join("null"));
        std::fs::write(b.dir.join("rootfs/secret"), "secret-data").unwrap();
        std::fs::write(b.dir.join("rootfs/masked"), "masked-data").unwrap();
        bind_own_dev(&mut b, &dev);
        b.config["linux"]["maskedPaths"] = json!(["/masked"]);
        b.config["linux"]["readonlyPaths"] = json!([]);
        b.sh("stat -c '%F %t:%T' /masked; head -c 64 /masked; echo");
        let (code, out, err) = b.run();
        if code == 0 {
            assert!(
                out.starts_with("character special file 1:3\n"),
                "{what}: /masked is not the null device: {out}"
            );
        } else {
            assert!(
                err.contains("/dev/null") && err.starts_with("berth: "),
                "{what}: {err}"
            );
        }
        assert!(!out.contains("secret-data"), "{what}: {out}");
        assert!(!out.contains("masked-data"), "{what}: {out}");
        b.assert_clean();
    }
}

/// CVE-2025-52565: the pty is bound onto /dev/console. If the image's
/// /dev/console is a symlink, the bind must not follow it onto its target
/// (runc's case was /dev/pts/N swapped for a symlink; berth takes the slave
/// from the master's fd, TIOCGPTPEER, so no path is involved there).
#[test]
fn cve_2025_52565_console_symlink_never_redirects_the_pty() {
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;
    let mut b = Bundle::new("cve52565");
    let dev = b.dir.join("imagedev");
    std::fs::create_dir(&dev).unwrap();
    symlink("/target", dev.join("console")).unwrap();
    symlink("pts/ptmx", dev.join("ptmx")).unwrap();
    symlink("/dev/null", dev.join("nullish")).unwrap();
    std::fs::write(b.dir.join("rootfs/target"), "target-data").unwrap();
    bind_own_dev(&mut b, &dev);
    b.config["process"]["terminal"] = json!(true);
    b.config["linux"]["maskedPaths"] = json!([]);
    b.config["linux"]["readonlyPaths"] = json!([]);
    b.sh("stat -c '%F' /target; stat -c '%F %t' /dev/console");
    let sock = b.dir.join("console.sock");
    let l = UnixListener::bind(&sock).unwrap();
    // Accept and hold the connection (and the master it carries) so the
    // container's output has somewhere to go.
    let keeper = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        use std::os::fd::AsRawFd;
        let msg = nix::sys::socket::recvmsg::<()>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut master = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                master = fds.first().copied();
            }
        }
        let master = master.expect("no pty master received");
        // SAFETY: the fd was just received and is ours.
        let mut f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n) = std::io::Read::read(&mut f, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).replace('\r', "")
    });
    let id = b.id();
    let out = b.berth(&[
        "run",
        "--console-socket",
        sock.to_str().unwrap(),
        "-b",
        b.dir.to_str().unwrap(),
        &id,
    ]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        let seen = keeper.join().unwrap();
        assert!(
            seen.contains("regular file\n"),
            "the pty was bound onto the symlink's target: {seen}"
        );
    } else {
        assert!(
            err.contains("/dev/console") && err.starts_with("berth: "),
            "{err}"
        );
        // The target is untouched and nothing is mounted on it.
        assert_eq!(
            std::fs::read_to_string(b.dir.join("rootfs/target")).unwrap(),
            "target-data"
        );
    }
    b.assert_clean();
}

/// CVE-2025-52881: writes to /proc (here oom_score_adj, a sysctl, and the
/// reopening of the exec fifo through /proc/self/fd) must reach the real
/// procfs, and a new filesystem (mounted onto /proc/self/fd/N of its
/// mountpoint) its real mountpoint, even when the container joins a mount
/// namespace whose /proc is a plain directory of symlinks: the other
/// container's to fake. Before the
/// fix berth wrote "7" into the attacker's /victim and "0" into a
/// /victimN; later its init panicked in libpathrs, which describes an fd
/// through that /proc when a lookup fails. The container must simply run,
/// and a failing /proc write must fail with its own reason.
#[test]
fn cve_2025_52881_procfs_writes_never_follow_a_fake_proc() {
    use std::os::unix::fs::symlink;
    // The attacker: no procfs at /proc, a writable root.
    let mut a = Bundle::new("cve52881a");
    let mut v = Bundle::new("cve52881b");
    let arootfs = a.dir.join("rootfs");
    a.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/proc");
    a.config["linux"]["maskedPaths"] = json!([]);
    a.config["linux"]["readonlyPaths"] = json!([]);
    a.config["root"]["readonly"] = json!(false);
    a.args(&["sleep", "1000"]);
    std::fs::create_dir_all(arootfs.join("proc/self/fd")).unwrap();
    std::fs::create_dir_all(arootfs.join("proc/sys/net/ipv4")).unwrap();
    symlink("/victim", arootfs.join("proc/self/oom_score_adj")).unwrap();
    symlink(
        "/victim-sysctl",
        arootfs.join("proc/sys/net/ipv4/ip_forward"),
    )
    .unwrap();
    // The victim's rootfs path, as seen in the attacker's namespace.
    let vroot_in_a = arootfs.join(v.dir.join("rootfs").strip_prefix("/").unwrap());
    std::fs::create_dir_all(vroot_in_a.join("bin")).unwrap();
    std::fs::hard_link(
        v.dir.join("rootfs/bin/busybox"),
        vroot_in_a.join("bin/busybox"),
    )
    .unwrap();
    symlink("busybox", vroot_in_a.join("bin/sh")).unwrap();
    let mut victims = vec![arootfs.join("victim"), arootfs.join("victim-sysctl")];
    for n in 3..=32 {
        symlink(
            format!("/victim{n}"),
            arootfs.join(format!("proc/self/fd/{n}")),
        )
        .unwrap();
        victims.push(arootfs.join(format!("victim{n}")));
        victims.push(vroot_in_a.join(format!("victim{n}")));
    }
    for p in &victims {
        std::fs::write(p, "orig").unwrap();
    }
    let aid = a.id();
    a.ok(&["run", "-d", "-b", a.dir.to_str().unwrap(), &aid]);
    let st: serde_json::Value = serde_json::from_str(&a.ok(&["state", &aid])).unwrap();
    let apid = st["pid"].as_i64().unwrap();

    // The victim joins the attacker's mount namespace.
    for ns in v.config["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "mount" {
            ns["path"] = json!(format!("/proc/{apid}/ns/mnt"));
        }
    }
    v.config["mounts"] =
        json!([{"destination": "/mnt-target", "type": "tmpfs", "source": "tmpfs"}]);
    v.config["linux"]["maskedPaths"] = json!([]);
    v.config["linux"]["readonlyPaths"] = json!([]);
    v.config["root"]["readonly"] = json!(false);
    v.config["process"]["oomScoreAdj"] = json!(7);
    v.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    v.sh("echo ran");
    let out = run_within(&v, std::time::Duration::from_secs(30));
    let amounts = std::fs::read_to_string(format!("/proc/{apid}/mountinfo")).unwrap();
    let target = format!(" {}/mnt-target ", v.dir.join("rootfs").display());
    let tmpfs_in_place = amounts
        .lines()
        .any(|l| l.contains(&target) && l.contains(" - tmpfs "));
    let changed: Vec<_> = victims
        .iter()
        .filter(|p| std::fs::read_to_string(p).unwrap() != "orig")
        .map(|p| p.strip_prefix(&arootfs).unwrap().display().to_string())
        .collect();
    let vid = v.id();
    v.ok(&["delete", "-f", &vid]);
    // A sysctl that is not there: the lookup fails, with its reason.
    v.config["linux"]["sysctl"] = json!({"net.ipv4.no_such_sysctl": "1"});
    let missing = run_within(&v, std::time::Duration::from_secs(30));
    v.ok(&["delete", "-f", &vid]);
    a.ok(&["delete", "-f", &aid]);
    assert!(
        changed.is_empty(),
        "writes went through the fake /proc to {changed:?}"
    );
    let out = out.expect("run hung: the exec fifo was not reopened");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout) == "ran\n",
        "{out:?}"
    );
    assert!(
        tmpfs_in_place,
        "the tmpfs is not at its mountpoint: {amounts}"
    );
    let missing = missing.expect("run hung");
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success(), "{missing:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("berth: ")
            && err.contains("net.ipv4.no_such_sysctl")
            && err.contains("No such file")
            && !err.contains("panic"),
        "{err}"
    );
    v.assert_clean();
    a.assert_clean();
}

/// `berth run` of `b` in the foreground, or None (it is killed) if it has
/// not ended within `timeout`.
fn run_within(b: &Bundle, timeout: std::time::Duration) -> Option<std::process::Output> {
    b.write();
    let mut child = std::process::Command::new(common::berth_bin())
        .arg("--root")
        .arg(&b.root)
        .args(["run", "-b", b.dir.to_str().unwrap(), &b.id()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let hung = child.try_wait().unwrap().is_none();
    if hung {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    (!hung).then_some(out)
}

/// CVE-2016-9962: during setup (and while `created`) the init holds host
/// fds and runs the host binary; a process in the container must not be
/// able to ptrace it or read its fds, environment or exe. In a user
/// namespace the capability checks alone do not stop that (a container
/// process with all capabilities there has every capability the init
/// has): only the init being non-dumpable does. The map is the identity
/// one on purpose: with another, the init's setuid inside the namespace
/// changes its ids and the kernel (fs.suid_dumpable = 0) clears
/// dumpability by itself, hiding whether berth does. And the exec'd
/// process itself holds no fd beyond its stdio.
#[test]
fn cve_2016_9962_init_is_not_reachable_from_the_container() {
    let mut b = Bundle::new("cve9962");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    b.config["linux"]["uidMappings"] = map.clone();
    b.config["linux"]["gidMappings"] = map;
    let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set] = json!(all);
    }
    b.args(&["sleep", "1000"]);
    let id = b.id();
    b.ok(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    // The init is now berth, holding its channel, the exec fifo and its
    // procfs, waiting for start.
    let probe = b.berth(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for f in environ fd/0 fd/3 fd/4 fd/5 exe cwd root; do \
           if cat /proc/1/$f >/dev/null 2>&1 || ls /proc/1/$f/ >/dev/null 2>&1; then echo \"REACHED $f\"; fi; \
         done; cat /proc/1/environ 2>&1 >/dev/null; echo own: $(ls /proc/self/fd/)",
    ]);
    let text = String::from_utf8_lossy(&probe.stdout).into_owned();
    b.ok(&["delete", "-f", &id]);
    assert!(probe.status.success(), "{probe:?}");
    assert!(!text.contains("REACHED"), "the init was reachable: {text}");
    assert!(text.contains("ermission denied"), "{text}");
    // ls opens one directory fd of its own (3).
    assert!(text.contains("own: 0 1 2 3\n"), "{text}");
    b.assert_clean();
}
