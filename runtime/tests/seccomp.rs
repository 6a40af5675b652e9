//! linux.seccomp: each profile is checked from inside a real container by
//! the syscalls it should allow or deny, in both load orders (with and
//! without no_new_privs).

mod common;

use common::Bundle;
use serde_json::{json, Value};

/// A bundle whose profile is `seccomp`, and whose process runs `script`.
fn bundle(tag: &str, seccomp: Value, nnp: bool, script: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    b.config["linux"]["seccomp"] = seccomp;
    b.config["process"]["noNewPrivileges"] = json!(nnp);
    b.config["root"]["readonly"] = json!(false);
    b.sh(script);
    b
}

/// Run to completion, expecting exit 0 and no leftovers; returns stdout.
fn inside(b: &Bundle) -> String {
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    b.assert_clean();
    out
}

fn allow_but(syscalls: Value) -> Value {
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": syscalls})
}

#[test]
fn errno_rule_denies_mkdir_only() {
    for nnp in [true, false] {
        let profile = allow_but(json!([{
            "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1
        }]));
        let b = bundle(
            "mkdir",
            profile,
            nnp,
            "echo hello; mkdir /tmp/x 2>&1; test -d /tmp/x && echo made; \
             grep Seccomp: /proc/self/status",
        );
        let out = inside(&b);
        assert!(out.starts_with("hello\n"), "{out}");
        assert!(out.contains("Operation not permitted"), "nnp={nnp}: {out}");
        assert!(!out.contains("made"), "{out}");
        assert!(out.contains("Seccomp:\t2"), "{out}");
    }
}

#[test]
fn errno_default_is_eperm_and_errno_ret_is_honoured() {
    // No errnoRet: EPERM. errnoRet 28 (ENOSPC) on mkdir shows the value is used.
    let profile = allow_but(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}
    ]));
    let b = bundle(
        "errnoret",
        profile,
        true,
        "mkdir /tmp/x 2>&1; rmdir /tmp 2>&1; true",
    );
    let out = inside(&b);
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn default_errno_ret() {
    // Everything but a shell's needs fails with ENOSPC, and nothing with EPERM.
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 28,
        "syscalls": [{"names": shell_syscalls(), "action": "SCMP_ACT_ALLOW"}]
    });
    let b = bundle(
        "deferrno",
        profile,
        true,
        "echo hi; mkdir /tmp/x 2>&1; true",
    );
    let out = inside(&b);
    assert!(out.starts_with("hi\n"), "{out}");
    assert!(out.contains("No space left on device"), "{out}");
}

/// What busybox sh with echo/mkdir/grep needs, and no more.
fn shell_syscalls() -> Value {
    json!([
        "read",
        "write",
        "open",
        "openat",
        "close",
        "stat",
        "fstat",
        "lstat",
        "newfstatat",
        "statx",
        "poll",
        "lseek",
        "mmap",
        "mprotect",
        "munmap",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "faccessat",
        "faccessat2",
        "dup",
        "dup2",
        "dup3",
        "fcntl",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "execve",
        "exit",
        "exit_group",
        "wait4",
        "clone",
        "fork",
        "vfork",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "getcwd",
        "uname",
        "readlink",
        "getrandom",
        "pipe",
        "pipe2",
        "sigaltstack",
        "futex",
        "getpgrp",
        "setpgid",
        "getrlimit",
        "sysinfo",
        "gettid",
        "getdents64",
        "chdir"
    ])
}

#[test]
fn arg_conditions() {
    // personality: only PER_LINUX (0) allowed (NE), and MASKED_EQ on the
    // PER_LINUX32 bit; linux32 calls personality(8), linux64 personality(0).
    for (op, extra) in [
        ("SCMP_CMP_NE", json!({"value": 0})),
        ("SCMP_CMP_MASKED_EQ", json!({"value": 8, "valueTwo": 8})),
    ] {
        let mut arg = json!({"index": 0, "op": op});
        arg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let profile = allow_but(json!([{
            "names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [arg]
        }]));
        let mut b = bundle("args", profile, true, "");
        for a in ["linux32", "linux64"] {
            let link = b.dir.join("rootfs/bin").join(a);
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
        b.sh("linux64 true && echo linux64-ok; linux32 true 2>&1 || echo linux32-denied");
        let out = inside(&b);
        assert!(out.contains("linux64-ok"), "{op}: {out}");
        assert!(out.contains("linux32-denied"), "{op}: {out}");
    }
}

#[test]
fn several_conditions_on_one_argument_are_ored() {
    // kill(pid, USR1) and kill(pid, USR2) are denied; kill(pid, 0) is not.
    // ANDed into one rule (sig == 10 && sig == 12) they would deny nothing.
    let profile = allow_but(json!([{
        "names": ["kill"], "action": "SCMP_ACT_ERRNO",
        "args": [
            {"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}
        ]
    }]));
    let b = bundle(
        "kill",
        profile,
        true,
        "trap '' USR1 USR2; kill -0 $$ && echo zero-ok; \
         kill -USR1 $$ 2>/dev/null || echo usr1-denied; \
         kill -USR2 $$ 2>/dev/null || echo usr2-denied",
    );
    assert_eq!(inside(&b), "zero-ok\nusr1-denied\nusr2-denied\n");
}

#[test]
fn kill_process_is_death_by_sigsys() {
    for nnp in [true, false] {
        let profile = allow_but(json!([{
            "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"
        }]));
        let mut b = bundle("sigsys", profile, nnp, "");
        b.args(&["busybox", "mkdir", "/tmp/x"]);
        let (code, out, err) = b.run();
        assert_eq!(code, 128 + libc::SIGSYS, "stdout: {out}\nstderr: {err}");
        b.assert_clean();
    }
}

#[test]
fn log_flag_and_tsync_are_accepted() {
    let mut profile = allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_LOG"}]));
    profile["flags"] = json!(["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"]);
    let b = bundle("logflag", profile, true, "mkdir /tmp/x && echo made");
    assert_eq!(inside(&b), "made\n");
}

#[test]
fn unknown_names_are_skipped() {
    let profile = allow_but(json!([{
        "names": ["no_such_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"
    }]));
    let b = bundle("unknown", profile, false, "mkdir /tmp/x 2>&1; true");
    assert!(inside(&b).contains("Operation not permitted"));
}

/// A create that must fail with a one-line error containing `want`.
fn create_fails(b: &Bundle, want: &str) {
    let id = b.id();
    let err = b.fails(&["create", "-b", b.dir.to_str().unwrap(), &id]);
    assert!(err.contains(want), "{err}");
    b.assert_clean();
}

#[test]
fn bad_profiles_fail_cleanly() {
    let cases = [
        (json!({"defaultAction": "SCMP_ACT_BOGUS"}), "SCMP_ACT_BOGUS"),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
            "SECCOMP_FILTER_FLAG_BOGUS",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]}),
            "SCMP_ARCH_BOGUS",
        ),
        (
            allow_but(json!([{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}])),
            "linux.seccomp.syscalls[0].args[0].index",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_NOTIFY"}),
            "linux.seccomp.defaultAction",
        ),
        (
            allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "errnoRet": 70000}])),
            "linux.seccomp.syscalls[0].errnoRet",
        ),
    ];
    for (profile, want) in cases {
        let b = bundle("badprof", profile, true, "true");
        create_fails(&b, want);
    }
}

/// A docker-like default profile: default ERRNO, three x86 arches, every
/// syscall libseccomp knows on this arch allowed except the privileged
/// ones docker denies, and docker's argument rules on personality and clone.
fn docker_like() -> Value {
    const DENIED: &[&str] = &[
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "clone3",
        "create_module",
        "delete_module",
        "finit_module",
        "get_kernel_syms",
        "get_mempolicy",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mbind",
        "mount",
        "move_pages",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "perf_event_open",
        "personality",
        "pivot_root",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "query_module",
        "quotactl",
        "reboot",
        "request_key",
        "set_mempolicy",
        "setns",
        "settimeofday",
        "stime",
        "swapoff",
        "swapon",
        "sysfs",
        "_sysctl",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
        "clone",
    ];
    let arch = libseccomp::ScmpArch::native();
    let names: Vec<String> = (0..1024)
        .filter_map(|nr| {
            libseccomp::ScmpSyscall::from(nr)
                .get_name_by_arch(arch)
                .ok()
        })
        .filter(|n| !DENIED.contains(&n.as_str()))
        .collect();
    assert!(names.len() > 250, "only {} syscall names", names.len());
    // clone without namespace flags: (flags & CLONE_NEW*) == 0.
    let clone_ns_mask: u64 = 0x7E02_0000;
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": names, "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": clone_ns_mask, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    })
}

#[test]
fn docker_like_default_profile_runs_a_shell() {
    for nnp in [true, false] {
        let b = bundle(
            "docker",
            docker_like(),
            nnp,
            "echo hi | cat; mkdir /tmp/d && echo made; ls / >/dev/null && echo listed; \
             unshare -n true 2>&1 || echo unshare-denied",
        );
        let link = b.dir.join("rootfs/bin/unshare");
        std::os::unix::fs::symlink("busybox", link).unwrap();
        b.write();
        let out = inside(&b);
        assert!(out.starts_with("hi\nmade\nlisted\n"), "nnp={nnp}: {out}");
        assert!(out.contains("unshare-denied"), "nnp={nnp}: {out}");
    }
}

/// Load `profile` in a forked child, make each raw syscall (no arguments)
/// there, and return the errno of each (0 for success), or the signal that
/// killed the child first.
#[cfg(target_arch = "x86_64")]
fn syscalls_under(profile: Value, calls: &[i64]) -> Result<Vec<i32>, i32> {
    let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(profile).unwrap();
    let filter = berth::seccomp::compile(&s).unwrap();
    let mut p = [0i32; 2];
    // SAFETY: pipe, fork and raw syscalls; the child only makes syscalls
    // (no allocation: the program is prebuilt) and _exits.
    unsafe {
        assert_eq!(libc::pipe(p.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::close(p[0]);
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if filter.load().is_err() {
                libc::_exit(99);
            }
            for &nr in calls {
                let r = libc::syscall(nr, 0, 0, 0, 0, 0, 0);
                let e: i32 = if r < 0 { *libc::__errno_location() } else { 0 };
                libc::write(p[1], (&e as *const i32).cast(), 4);
            }
            libc::_exit(0);
        }
        libc::close(p[1]);
        let mut out = Vec::new();
        let mut e = 0i32;
        while libc::read(p[0], (&mut e as *mut i32).cast(), 4) == 4 {
            out.push(e);
        }
        libc::close(p[0]);
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        if libc::WIFSIGNALED(status) {
            return Err(libc::WTERMSIG(status));
        }
        assert_eq!(libc::WEXITSTATUS(status), 0, "child failed to load");
        Ok(out)
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    const X32: i64 = 0x4000_0000;
    let (getpid, getppid, exit_group) = (39, 110, 231);
    let profile = |default: &str, arches: Value| {
        json!({
            "defaultAction": default,
            "architectures": arches,
            "syscalls": [{"names": ["getpid", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
        })
    };
    // exit_group (231) is the highest syscall named: 232 and up are unknown.
    let calls = [
        getpid,
        getppid,
        exit_group + 1,
        1000,
        X32 | getppid,
        X32 | 1000,
    ];
    let got = syscalls_under(
        profile(
            "SCMP_ACT_ERRNO",
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]),
        ),
        &calls,
    );
    let (ok, eperm, enosys) = (0, libc::EPERM, libc::ENOSYS);
    assert_eq!(got, Ok(vec![ok, eperm, enosys, enosys, eperm, enosys]));

    // The native arch is covered even when the profile lists none.
    let got = syscalls_under(profile("SCMP_ACT_ERRNO", json!([])), &calls[..4]);
    assert_eq!(got, Ok(vec![ok, eperm, enosys, enosys]));

    // A killing default: unknown syscalls still just fail, known ones kill.
    let got = syscalls_under(
        profile("SCMP_ACT_KILL_PROCESS", json!(["SCMP_ARCH_X86_64"])),
        &[1000, getpid, getppid, getpid],
    );
    assert_eq!(got, Err(libc::SIGSYS));
    let got = syscalls_under(
        profile("SCMP_ACT_KILL_PROCESS", json!(["SCMP_ARCH_X86_64"])),
        &[1000, getpid],
    );
    assert_eq!(got, Ok(vec![enosys, ok]));

    // An allowing default has nothing to protect: no stub, and rules still apply.
    let allow = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]
    });
    assert_eq!(
        syscalls_under(allow, &[getppid, getpid]),
        Ok(vec![eperm, ok])
    );
}

/// A seccomp agent on `path`: takes the listener berth sends, answers every
/// notification with EXDEV until the container is gone, and returns the
/// state message and the names of the syscalls it was asked about.
fn agent(path: &std::path::Path) -> std::thread::JoinHandle<(Value, Vec<String>)> {
    use std::io::IoSliceMut;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: received fds are ours.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = msg.bytes;
        let mut data = buf[..n].to_vec();
        std::io::Read::read_to_end(&mut &conn, &mut data).unwrap();
        let state: Value = serde_json::from_slice(&data).unwrap();
        let fd = fd.expect("no listener fd came with the state");
        let mut names = Vec::new();
        loop {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, 20_000) };
            assert!(r > 0, "agent: no notification and no hangup in 20 s");
            if p.revents & libc::POLLIN == 0 {
                break; // POLLHUP: every process under the filter is gone.
            }
            let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
            names.push(req.data.syscall.get_name().unwrap());
            let resp = ScmpNotifResp::new_error(req.id, -libc::EXDEV, ScmpNotifRespFlags::empty());
            // The container may have died in between; that is not our failure.
            let _ = resp.respond(fd.as_raw_fd());
        }
        (state, names)
    })
}

#[test]
fn notify_hands_the_listener_to_the_agent() {
    for nnp in [true, false] {
        let mut b = bundle("notify", json!(null), nnp, "mkdir /tmp/x 2>&1; echo done");
        let sock = b.dir.join("agent.sock");
        let mut profile = allow_but(json!([{
            "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"
        }]));
        profile["listenerPath"] = json!(sock);
        profile["listenerMetadata"] = json!("berth-test");
        if nnp {
            profile["flags"] = json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
        }
        b.config["linux"]["seccomp"] = profile;
        let agent = agent(&sock);
        let out = inside(&b);
        assert_eq!(
            out,
            "mkdir: can't create directory '/tmp/x': Invalid cross-device link\ndone\n"
        );
        let (msg, names) = agent.join().unwrap();
        assert_eq!(msg["fds"], json!(["seccompFd"]), "{msg}");
        assert_eq!(msg["metadata"], "berth-test", "{msg}");
        assert_eq!(msg["state"]["id"], b.id().as_str(), "{msg}");
        assert_eq!(msg["state"]["status"], "creating", "{msg}");
        assert!(msg["pid"].as_i64().unwrap() > 0, "{msg}");
        assert_eq!(msg["pid"], msg["state"]["pid"], "{msg}");
        assert!(!msg["ociVersion"].is_null(), "{msg}");
        assert!(
            names.iter().all(|n| n.starts_with("mkdir")) && !names.is_empty(),
            "{names:?}"
        );
    }
}

#[test]
fn notify_without_a_working_agent_fails_cleanly() {
    let notify = allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]));
    let b = bundle("nolistener", notify.clone(), true, "true");
    create_fails(&b, "linux.seccomp.listenerPath");

    let mut gone = notify.clone();
    gone["listenerPath"] = json!("/nonexistent/agent.sock");
    let b = bundle("deadagent", gone, false, "true");
    create_fails(&b, "listenerPath /nonexistent/agent.sock: connect");

    let mut profile = allow_but(json!([{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]));
    profile["listenerPath"] = json!("/nonexistent/agent.sock");
    let b = bundle("notifywrite", profile, true, "true");
    create_fails(&b, "linux.seccomp.syscalls[0].names");

    let mut wait = allow_but(json!([]));
    wait["flags"] = json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]);
    let b = bundle("waitkill", wait, true, "true");
    create_fails(&b, "linux.seccomp.flags[0]");
}

#[test]
fn a_profile_may_deny_what_the_init_needs_after_loading() {
    // Without no_new_privs the filter is loaded before the caps are dropped;
    // the cwd check (getcwd) must already be done by then (runtime-tools'
    // linux_seccomp denies getcwd).
    for nnp in [false, true] {
        let profile = allow_but(json!([{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]));
        let mut b = bundle("getcwd", profile, nnp, "pwd 2>&1; echo ran");
        b.config["process"]["cwd"] = json!("/tmp");
        let out = inside(&b);
        assert!(out.ends_with("ran\n"), "nnp={nnp}: {out}");
    }
}
