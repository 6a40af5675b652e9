use super::*;
use serde_json::json;

fn mounts() -> Vec<Mount> {
    mountinfo::parse(
        "30 20 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         31 20 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
         32 20 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
         40 20 0:26 /c1 /inner/memory rw - cgroup cgroup rw,memory\n",
    )
}

#[test]
fn hybrid_layout_maps_v1_and_v2() {
    let l = Layout::new("5:memory:/c1\n4:cpu:/c1\n0::/c1\n", &mounts());
    assert_eq!(
        l.dir("memory"),
        Some((Version::V1, Path::new("/inner/memory")))
    );
    assert_eq!(
        l.dir("cpu"),
        Some((Version::V1, Path::new("/sys/fs/cgroup/cpu/c1")))
    );
    assert_eq!(
        l.dir("hugetlb"),
        Some((Version::V2, Path::new("/sys/fs/cgroup/unified/c1")))
    );
}

#[test]
fn bind_of_other_cgroup_does_not_map() {
    let m = mountinfo::parse("40 20 0:26 /other /m rw - cgroup cgroup rw,memory\n");
    assert!(Layout::new("5:memory:/c1\n", &m).dir("memory").is_none());
}

#[test]
fn v1_and_v2_file_names() {
    let r = json!({"memory": {"limit": 67108864}, "pids": {"limit": 32}, "cpu": {"quota": 50000, "period": 100000}});
    let v1 = checks(
        &r,
        &Layout::new("5:memory:/c\n6:pids:/c\n4:cpu:/c\n", &mounts()),
    );
    assert!(v1
        .iter()
        .any(|c| c.file == "memory.limit_in_bytes" && c.want == Want::Exact("67108864".into())));
    let only2 = mountinfo::parse("32 20 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    let v2 = checks(&r, &Layout::new("0::/c\n", &only2));
    assert!(v2.iter().any(|c| c.file == "memory.max"));
    assert!(v2
        .iter()
        .any(|c| c.file == "pids.max" && c.want == Want::Exact("32".into())));
    assert!(v2
        .iter()
        .any(|c| c.file == "cpu.max" && c.want == Want::Exact("50000 100000".into())));
}

#[test]
fn judge_lines() {
    assert!(judge(&Want::Line("c 1:3 rwm".into()), "a *:* m\nc 1:3 rwm\n").is_ok());
    assert!(judge(&Want::NoLine("a *:* rwm".into()), "a *:* rwm\n").is_err());
}

#[test]
fn device_rules_cover() {
    assert!(covers("c 1:5 rwm", "c 1:5 r"));
    assert!(covers("c 136:* rwm", "c 136:* rw"));
    assert!(covers("a *:* rwm", "b 7:1 m"));
    assert!(!covers("c 1:5 r", "c 1:5 rw"));
    assert!(!covers("c 136:1 rwm", "c 136:* rw"));
}
