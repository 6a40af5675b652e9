use super::*;
use crate::cgroups::bpf_sim::{model, run};
use crate::cgroups::devices::rules;
use oci_spec::runtime::LinuxDeviceCgroup;

fn cfg(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).unwrap()
}

const TYPICAL: &str = r#"[{"allow":false,"access":"rwm"},
    {"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"},
    {"allow":true,"type":"b","major":8,"minor":20,"access":"rw"},
    {"allow":false,"type":"c","major":1,"minor":9,"access":"w"}]"#;

#[test]
fn typical_config() {
    let rs = rules(Some(&cfg(TYPICAL)), None).unwrap();
    let p = program(&rs).unwrap();
    let (c, b) = (2, 1);
    let (m, r, w) = (1, 2, 4);
    assert_eq!(run(&p, c, r | w, 1, 3), 1, "/dev/null rw");
    assert_eq!(run(&p, c, r | w, 10, 229), 1, "fuse rw");
    assert_eq!(run(&p, b, r | w, 8, 20), 1, "b 8:20 rw");
    assert_eq!(run(&p, b, r, 8, 21), 0, "b 8:21 r");
    assert_eq!(run(&p, b, m, 8, 21), 1, "mknod of anything is allowed");
    assert_eq!(run(&p, c, r, 4, 1), 0, "tty1");
    assert_eq!(run(&p, c, r | w, 136, 7), 1, "pts/7");
    // The default urandom rule comes after the config's deny of writes.
    assert_eq!(run(&p, c, w, 1, 9), 1);
}

#[test]
fn program_matches_model_everywhere() {
    let configs = [
        TYPICAL,
        "[]",
        r#"[{"allow":false,"type":"a","major":-1,"minor":3,"access":"rw"},
            {"allow":true,"type":"c","major":1,"access":"r"},
            {"allow":false,"type":"b","access":"m"}]"#,
        r#"[{"allow":true,"access":"rwm"},{"allow":false,"type":"c","major":5,"access":"wm"}]"#,
    ];
    for json in configs {
        let rs = rules(Some(&cfg(json)), None).unwrap();
        let p = program(&rs).unwrap();
        for typ in [1, 2] {
            for access in 1..8 {
                for major in [0, 1, 5, 8, 10, 136, 200] {
                    for minor in [0, 2, 3, 9, 20, 229] {
                        assert_eq!(
                            run(&p, typ, access, major, minor),
                            model(&rs, typ, access, major, minor),
                            "{json}: type {typ} access {access} {major}:{minor}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn too_many_rules_are_an_error() {
    // Each rule needs a few instructions per access bit, and the jump over
    // a bit's rules must fit in 16 bits: 20000 rules do not. This panicked.
    let many: Vec<String> = (0..20000)
        .map(|i| format!(r#"{{"allow":true,"type":"c","major":{i},"minor":1,"access":"rwm"}}"#))
        .collect();
    let rs = rules(Some(&cfg(&format!("[{}]", many.join(",")))), None).unwrap();
    let e = program(&rs).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "linux.resources.devices: {} device rules are more than an eBPF device filter can hold",
            rs.len()
        )
    );
    // The most that still fits is far beyond any real config.
    assert!(program(&rs[..2000]).is_ok());
}

#[test]
fn unconditional_rules_cut_shadowed_code() {
    let rs = rules(Some(&cfg(r#"[{"allow":false,"access":"rwm"}]"#)), None).unwrap();
    let with_deny = program(&rs).unwrap().len();
    let rs2 = rules(
        Some(&cfg(r#"[{"allow":true,"type":"c","major":3,"minor":3,"access":"rwm"},{"allow":false,"access":"rwm"}]"#)),
        None,
    )
    .unwrap();
    // The leading rule is shadowed by the deny-all for every bit.
    assert_eq!(program(&rs2).unwrap().len(), with_deny);
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

// The integration tests' counted skips (a line on the real stderr and in
// $BERTH_SKIP_LOG for run-tests.sh), shared rather than copied.
#[path = "../../tests/skip/mod.rs"]
mod skip;

#[test]
fn kernel_accepts_programs() {
    if !is_root() {
        return skip::record("BPF_PROG_LOAD needs root");
    }
    for json in [TYPICAL, "[]", r#"[{"allow":true,"access":"m"}]"#] {
        let rs = rules(Some(&cfg(json)), None).unwrap();
        let insns = program(&rs).unwrap();
        if let Err(e) = load(&insns, None) {
            panic!("{json}: {e}{}", last_log_line(&insns));
        }
    }
}

/// Run `sh -c script` inside the cgroup2 directory `dir`; true on exit 0.
/// The shell moves itself there first ("0" is the writer) and exits 99 if
/// it cannot, which is a failure of the test, not a denial.
fn sh_in(dir: &Path, script: &str) -> bool {
    let procs = dir.join("cgroup.procs");
    let status = std::process::Command::new("/bin/sh")
        .args(["-c", r#"echo 0 > "$1" || exit 99; eval "$2""#, "sh"])
        .arg(&procs)
        .arg(script)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_ne!(status.code(), Some(99), "cannot join {}", procs.display());
    status.success()
}

/// Attach a filter to a fresh cgroup2 directory (the unified mount on a
/// hybrid host works too: the kernel runs v2 device programs there) and
/// check what a process inside may open.
#[test]
fn kernel_enforces_attached_filter() {
    if !is_root() {
        return skip::record("attaching needs root");
    }
    let cg = crate::cgroups::Cgroup::resolve(
        Some(Path::new(&format!(
            "/berth-bpf-test-{}",
            std::process::id()
        ))),
        "x",
    )
    .unwrap();
    let dir = cg
        .dirs
        .iter()
        .find(|d| d.is_unified())
        .expect("a cgroup2 mount")
        .path
        .clone();
    std::fs::create_dir(&dir).unwrap();
    let rs = rules(
        Some(&cfg(r#"[{"allow":false,"access":"rwm"},
                      {"allow":true,"type":"c","major":1,"minor":5,"access":"r"}]"#)),
        None,
    )
    .unwrap();
    // Only the config rules: the defaults would allow /dev/zero writes.
    let result = attach(&dir, &program(&rs[..2]).unwrap()).map(|()| {
        [
            sh_in(&dir, "true < /dev/zero"),
            sh_in(&dir, "true > /dev/zero"),
            sh_in(&dir, "true < /dev/null"),
        ]
    });
    let full = attach(&dir, &program(&rs).unwrap())
        .map(|()| sh_in(&dir, "true < /dev/full && true > /dev/null"));
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(result.unwrap(), [true, false, false]);
    // A second program is ANDed with the first (BPF_F_ALLOW_MULTI): the
    // defaults allow /dev/full, the first program still denies it.
    assert!(!full.unwrap());
}
