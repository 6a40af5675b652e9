//! Fault-injection suite (CRASH-CONSISTENCY.md): berth is killed with
//! SIGKILL and SIGTERM at every step of create, run, start, exec and delete,
//! then `delete -f` must leave no process, cgroup, mount or state, and the
//! id must be reusable. Also: damaged state files, a full disk under --root,
//! EMFILE, 20 racing creates of one id and 100 parallel lifecycles.
//!
//! The steps are `interrupt::step` calls, fault points only in a build with
//! the `fault-injection` feature: berth raises the signal at itself at the
//! named step, so each case is deterministic (no sleeps, no timing).
//! `BERTH_FAULT_TRACE` lists the steps each command passes, so a new step is
//! covered without editing this file.
//!
//!     cargo test -p berth --features fault-injection --test faults -- --nocapture
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use common::{berth_bin, Bundle};
use serde_json::json;

/// Run berth with extra environment; output to files (a created container
/// inherits berth's stdio).
fn berth(b: &Bundle, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    b.write();
    berth_in(&b.root, &b.dir, args, env, None)
}

fn berth_in(
    root: &Path,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    nofile: Option<u64>,
) -> (ExitStatus, String) {
    let err = tempfile(dir, "err");
    let mut cmd = Command::new(berth_bin());
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    if let Some(n) = nofile {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &l);
                Ok(())
            });
        }
    }
    let status = cmd.status().unwrap();
    let text = std::fs::read_to_string(&err).unwrap_or_default();
    let _ = std::fs::remove_file(&err);
    (status, text.trim().to_string())
}

fn tempfile(dir: &Path, tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    dir.join(format!(".{tag}{n}"))
}

/// Processes whose command line names `marker` (the init before execve
/// carries berth's arguments, so the id; the container's and the hooks'
/// commands carry it too).
fn processes(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim().starts_with('Z'))
        });
        if cmd.contains(marker) && !zombie {
            out.push(format!("pid {name}: {}", cmd.trim()));
        }
    }
    out
}

/// Everything of `b` left on the host: state entries, mounts, cgroups, processes.
fn leftovers(b: &Bundle, marker: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(&b.root)
        .map(|d| {
            d.flatten()
                .map(|e| format!("state {}", e.path().display()))
                .collect()
        })
        .unwrap_or_default();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let bundle = b.dir.to_str().unwrap();
    out.extend(
        mi.lines()
            .filter(|l| l.contains(bundle))
            .map(|l| format!("mount {l}")),
    );
    for c in common::cgroup_dirs(&b.cgroup) {
        if c.exists() {
            out.push(format!("cgroup {}", c.display()));
        }
    }
    out.extend(processes(marker));
    out
}

fn bundle(tag: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    let name = b.name.clone();
    b.sh(&format!("sleep 1000; : {name}"));
    // A prestart hook, so the hook steps are passed too.
    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!(": {name}")]}]});
    b
}

struct Tally {
    passed: u32,
    failed: Vec<String>,
}

impl Tally {
    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) -> bool {
        if ok {
            self.passed += 1;
        } else {
            let d = detail();
            eprintln!("FAIL {what}: {d}");
            self.failed.push(format!("{what}: {d}"));
        }
        ok
    }
}

/// What the command under test needs to exist first.
fn prepare(b: &Bundle, cmd: &str) {
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    match cmd {
        "create" | "run" => {}
        // Images CRIU refuses: restore passes every step up to CRIU, which
        // then fails (the host's CRIU may not work at all; see
        // tests/checkpoint.rs), so the steps after it are not reached here.
        "restore" => {
            let img = b.dir.join("img");
            std::fs::create_dir(&img).unwrap();
            let fds = r#"["/dev/null","/dev/null","/dev/null"]"#;
            std::fs::write(img.join("descriptors.json"), fds).unwrap();
        }
        "start" => assert!(berth(b, &["create", "-b", &dir, &id], &[]).0.success()),
        _ => assert!(berth(b, &["run", "-d", "-b", &dir, &id], &[]).0.success()),
    }
}

fn command(b: &Bundle, cmd: &str) -> Vec<String> {
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    let name = b.name.clone();
    let v: Vec<String> = match cmd {
        "create" => vec!["create".into(), "-b".into(), dir, id],
        "run" => vec!["run".into(), "-d".into(), "-b".into(), dir, id],
        "start" => vec!["start".into(), id],
        "exec" => vec![
            "exec".into(),
            "-d".into(),
            id,
            "sh".into(),
            "-c".into(),
            format!("sleep 1000; : {name}"),
        ],
        "delete" => vec!["delete".into(), "-f".into(), id],
        "restore" => vec![
            "restore".into(),
            "-d".into(),
            "-b".into(),
            dir,
            "--image-path".into(),
            b.dir.join("img").to_str().unwrap().into(),
            id,
        ],
        _ => unreachable!(),
    };
    v
}

/// The steps `cmd` passes, in order.
fn trace(cmd: &str) -> Vec<String> {
    let b = bundle("ftrace");
    prepare(&b, cmd);
    let t = tempfile(&b.dir, "trace");
    let args = command(&b, cmd);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (st, err) = berth(&b, &args, &[("BERTH_FAULT_TRACE", t.to_str().unwrap())]);
    assert!(st.success() || cmd == "restore", "{cmd}: {err}");
    let _ = berth(&b, &["delete", "-f", &b.id()], &[]);
    let text = std::fs::read_to_string(&t).unwrap_or_default();
    let mut seen = Vec::new();
    for l in text.lines() {
        if !seen.iter().any(|s| s == l) {
            seen.push(l.to_string());
        }
    }
    seen
}

/// One (command, step, signal) case; returns "before → after" leftovers.
fn fault_case(t: &mut Tally, cmd: &str, point: &str, sig: &str) -> String {
    let b = bundle("fault");
    let id = b.id();
    let what = format!("{cmd} {point} SIG{sig}");
    prepare(&b, cmd);
    let args = command(&b, cmd);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (st, err) = berth(
        &b,
        &args,
        &[("BERTH_FAULT_POINT", point), ("BERTH_FAULT_SIGNAL", sig)],
    );
    use std::os::unix::process::ExitStatusExt;
    // SIGKILL always kills; a caught SIGTERM ends create/run with an error.
    let died = st.signal().is_some() || !st.success() || point == "create:committed";
    t.check(&format!("{what}: berth stopped"), died, || {
        format!("exit {st:?}: {err}")
    });
    let before = leftovers(&b, &b.name);
    // A SIGTERM during create or run (before the container is committed) is
    // cleaned up by berth itself.
    if sig == "TERM" && (cmd == "run" || (cmd == "create" && point != "create:committed")) {
        t.check(
            &format!("{what}: undone by berth"),
            before.is_empty(),
            || format!("{before:?} ({err})"),
        );
    }
    // `list` must show what is there (a broken entry included).
    let (lst, _) = berth(&b, &["list", "-q"], &[]);
    t.check(&format!("{what}: list works"), lst.success(), String::new);
    let (dst, derr) = berth(&b, &["delete", "-f", &id], &[]);
    t.check(&format!("{what}: delete -f"), dst.success(), || {
        derr.clone()
    });
    let after = leftovers(&b, &b.name);
    t.check(&format!("{what}: nothing left"), after.is_empty(), || {
        format!("{after:?}")
    });
    // Removing the state dir must never reach into the bundle (restore's
    // CRIU root is a bind of the rootfs inside the state dir).
    let busybox = b.dir.join("rootfs/bin/busybox");
    t.check(&format!("{what}: rootfs intact"), busybox.exists(), || {
        format!("{} is gone", busybox.display())
    });
    let dir = b.dir.to_str().unwrap().to_string();
    let (rst, rerr) = berth(&b, &["run", "-d", "-b", &dir, &id], &[]);
    let (d2, _) = berth(&b, &["delete", "-f", &id], &[]);
    let again = leftovers(&b, &b.name);
    t.check(
        &format!("{what}: id reusable"),
        rst.success() && d2.success() && again.is_empty(),
        || format!("{rerr} {again:?}"),
    );
    format!("{} → {}", before.len(), after.len())
}

fn steps_table(t: &mut Tally) {
    let mut rows: BTreeMap<(usize, String), [String; 2]> = BTreeMap::new();
    for (i, cmd) in ["create", "run", "start", "exec", "delete", "restore"]
        .iter()
        .enumerate()
    {
        let points = trace(cmd);
        assert!(!points.is_empty(), "{cmd} passes no step");
        for (j, p) in points.iter().enumerate() {
            let k = fault_case(t, cmd, p, "KILL");
            let m = fault_case(t, cmd, p, "TERM");
            rows.insert((i * 100 + j, format!("{cmd:<7} {p}")), [k, m]);
        }
    }
    println!("\nleftovers after the fault → after `delete -f` (all must end at 0)");
    println!(
        "{:<34} {:<10} {:<10}",
        "command / step", "SIGKILL", "SIGTERM"
    );
    for ((_, name), [k, m]) in &rows {
        println!("{name:<34} {k:<10} {m:<10}");
    }
}

/// A running container whose state.json is then damaged in `how`.
fn damaged_state(t: &mut Tally, how: &str) {
    let b = bundle("fdamage");
    let other = bundle("fother");
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    assert!(berth(&b, &["run", "-d", "-b", &dir, &id], &[]).0.success());
    let odir = other.dir.to_str().unwrap().to_string();
    assert!(berth(&other, &["run", "-d", "-b", &odir, &other.id()], &[])
        .0
        .success());
    let state = b.root.join(&id).join("state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    match how {
        "truncated" => std::fs::write(&state, &text[..text.len() / 2]).unwrap(),
        "empty" => std::fs::write(&state, "").unwrap(),
        "garbage" => std::fs::write(&state, "\u{1}not json at all").unwrap(),
        "missing" => std::fs::remove_file(&state).unwrap(),
        "pid rewritten" => {
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["pid"] = json!(1);
            std::fs::write(&state, v.to_string()).unwrap();
        }
        "replaced" => {
            let o = std::fs::read(other.root.join(other.id()).join("state.json")).unwrap();
            std::fs::write(&state, o).unwrap();
        }
        _ => unreachable!(),
    }
    let what = format!("state.json {how}");
    let (lst, lout) = {
        b.write();
        let out = Command::new(berth_bin())
            .arg("--root")
            .arg(&b.root)
            .args(["list", "-q"])
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    t.check(
        &format!("{what}: list shows it"),
        lst.success() && lout.lines().any(|l| l == id),
        || lout.clone(),
    );
    let (dst, derr) = berth(&b, &["delete", "-f", &id], &[]);
    t.check(&format!("{what}: delete -f"), dst.success(), || {
        derr.clone()
    });
    let left = leftovers(&b, &b.name);
    t.check(&format!("{what}: nothing left"), left.is_empty(), || {
        format!("{left:?}")
    });
    let other_alive = berth(&other, &["state", &other.id()], &[]).0.success()
        && !processes(&other.name).is_empty();
    t.check(
        &format!("{what}: other container untouched"),
        other_alive,
        String::new,
    );
    let _ = berth(&other, &["delete", "-f", &other.id()], &[]);
    println!("{what:<34} left after delete -f: {}", left.len());
}

/// --root on a full tmpfs: out of space for the record (a large
/// annotation), and out of inodes early on (the exec fifo).
fn full_disk(t: &mut Tally) {
    for (opts, big) in [("size=64k", true), ("size=1m,nr_inodes=4", false)] {
        let mut b = bundle("ffull");
        let root = b.dir.join("tiny");
        std::fs::create_dir_all(&root).unwrap();
        let m = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(&root)
            .status()
            .unwrap();
        assert!(m.success());
        if big {
            b.config["annotations"] = json!({"big": "x".repeat(256 * 1024)});
        }
        let id = b.id();
        let dir = b.dir.to_str().unwrap().to_string();
        b.write();
        let what = format!("full disk ({opts})");
        let (st, err) = berth_in(&root, &b.dir, &["run", "-d", "-b", &dir, &id], &[], None);
        t.check(&format!("{what}: run fails"), !st.success(), String::new);
        t.check(
            &format!("{what}: error names the cause"),
            err.contains("No space left on device"),
            || err.clone(),
        );
        let (dst, derr) = berth_in(&root, &b.dir, &["delete", "-f", &id], &[], None);
        t.check(&format!("{what}: delete -f"), dst.success(), || {
            derr.clone()
        });
        let mut left: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| format!("state {}", e.path().display()))
            .collect();
        let _ = Command::new("umount").arg(&root).status();
        left.extend(leftovers(&b, &b.name));
        t.check(&format!("{what}: nothing left"), left.is_empty(), || {
            format!("{left:?}")
        });
        println!("{what:<34} left: {} ({err})", left.len());
    }
}

/// Too few file descriptors, at every limit where create fails.
fn emfile(t: &mut Tally) {
    let mut b = bundle("femfile");
    // Raising the hard limit back needs CAP_SYS_RESOURCE.
    b.config["process"]
        .as_object_mut()
        .unwrap()
        .remove("rlimits");
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    b.write();
    let mut failed_at = Vec::new();
    for n in (3..=40).step_by(3) {
        let (st, err) = berth_in(
            &b.root,
            &b.dir,
            &["run", "-d", "-b", &dir, &id],
            &[],
            Some(n),
        );
        if !st.success() {
            failed_at.push(n);
            let left = leftovers(&b, &b.name);
            t.check(&format!("EMFILE at {n}: undone"), left.is_empty(), || {
                format!("{left:?} ({err})")
            });
        }
        let (dst, derr) = berth(&b, &["delete", "-f", &id], &[]);
        t.check(&format!("EMFILE at {n}: delete -f"), dst.success(), || {
            derr.clone()
        });
        let left = leftovers(&b, &b.name);
        t.check(
            &format!("EMFILE at {n}: nothing left"),
            left.is_empty(),
            || format!("{left:?}"),
        );
    }
    println!(
        "{:<34} run -d failed at limits {failed_at:?}, nothing left",
        "RLIMIT_NOFILE 3..40"
    );
}

/// 20 creates of one id at once: exactly one wins, no orphan.
fn racing_creates(t: &mut Tally) {
    let b = bundle("frace");
    let id = b.id();
    let dir = b.dir.to_str().unwrap().to_string();
    b.write();
    // stderr to files: the winner's init inherits it.
    let kids: Vec<_> = (0..20)
        .map(|_| {
            let err = tempfile(&b.dir, "race");
            let k = Command::new(berth_bin())
                .arg("--root")
                .arg(&b.root)
                .args(["create", "-b", &dir, &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&err).unwrap())
                .spawn()
                .unwrap();
            (k, err)
        })
        .collect();
    let outs: Vec<_> = kids
        .into_iter()
        .map(|(mut k, err)| {
            let st = k.wait().unwrap();
            (st, std::fs::read_to_string(err).unwrap_or_default())
        })
        .collect();
    let wins = outs.iter().filter(|o| o.0.success()).count();
    let exists = outs
        .iter()
        .filter(|o| o.1.contains("already exists"))
        .count();
    t.check("20 racing creates: one wins", wins == 1, || {
        format!("{wins} won")
    });
    t.check(
        "20 racing creates: others 'already exists'",
        exists == 19,
        || format!("{exists}"),
    );
    let procs = processes(&b.name);
    t.check("20 racing creates: one init", procs.len() == 1, || {
        format!("{procs:?}")
    });
    let (dst, _) = berth(&b, &["delete", "-f", &id], &[]);
    let left = leftovers(&b, &b.name);
    t.check(
        "20 racing creates: nothing left",
        dst.success() && left.is_empty(),
        || format!("{left:?}"),
    );
    println!(
        "{:<34} {wins} won, {exists} 'already exists', {} left",
        "20 creates of one id",
        left.len()
    );
}

/// The cgroup a container without cgroupsPath gets in every hierarchy: `<id>`
/// below berth's own (this process's) cgroup.
fn default_cgroups(id: &str) -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut out = Vec::new();
    for l in own.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let mount = if ctrl.is_empty() {
            ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.join("cgroup.controllers").exists())
        } else {
            let name = ctrl.trim_start_matches("name=");
            Some(PathBuf::from("/sys/fs/cgroup").join(name)).filter(|p| p.exists())
        };
        if let Some(m) = mount {
            out.push(m.join(path.trim_start_matches('/')).join(id));
        }
    }
    out
}

/// 100 create/start/delete at once, each its own id: zero leftovers.
fn parallel_lifecycles(t: &mut Tally) {
    let mut b = bundle("fpar");
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("cgroupsPath");
    b.config["hooks"] = json!({});
    b.write();
    let dir = b.dir.to_str().unwrap().to_string();
    let ids: Vec<String> = (0..100).map(|i| format!("{}-{i}", b.name)).collect();
    let threads: Vec<_> = ids
        .iter()
        .map(|id| {
            let (root, bd, dir, id) = (b.root.clone(), b.dir.clone(), dir.clone(), id.clone());
            std::thread::spawn(move || {
                let c = berth_in(&root, &bd, &["create", "-b", &dir, &id], &[], None);
                let s = berth_in(&root, &bd, &["start", &id], &[], None);
                let d = berth_in(&root, &bd, &["delete", "-f", &id], &[], None);
                (
                    c.0.success() && s.0.success() && d.0.success(),
                    c.1 + &s.1 + &d.1,
                )
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0).count();
    t.check("100 parallel lifecycles: all succeed", ok == 100, || {
        results
            .iter()
            .find(|r| !r.0)
            .map(|r| r.1.clone())
            .unwrap_or_default()
    });
    let mut left = leftovers(&b, &b.name);
    for id in &ids {
        left.extend(
            default_cgroups(id)
                .into_iter()
                .filter(|p| p.exists())
                .map(|p| format!("cgroup {}", p.display())),
        );
    }
    t.check(
        "100 parallel lifecycles: nothing left",
        left.is_empty(),
        || format!("{left:?}"),
    );
    println!(
        "{:<34} {ok} of 100 succeeded, {} left",
        "100 parallel create/start/delete",
        left.len()
    );
}

#[test]
fn fault_injection_suite() {
    let mut t = Tally {
        passed: 0,
        failed: Vec::new(),
    };
    steps_table(&mut t);
    println!();
    for how in [
        "truncated",
        "empty",
        "garbage",
        "missing",
        "pid rewritten",
        "replaced",
    ] {
        damaged_state(&mut t, how);
    }
    full_disk(&mut t);
    emfile(&mut t);
    racing_creates(&mut t);
    parallel_lifecycles(&mut t);
    println!("\n{} passed, {} failed", t.passed, t.failed.len());
    assert!(t.failed.is_empty(), "{:#?}", t.failed);
}
