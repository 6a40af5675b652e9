use std::collections::HashMap;

use super::super::super::resources::w;
use super::*;

fn names(p: &[Prop]) -> Vec<String> {
    p.iter().map(|(n, v)| format!("{n}={v:?}")).collect()
}

#[test]
fn v2_writes_map_onto_properties() {
    let mut writes = vec![
        w("memory", "memory.max", "67108864".into(), "m"),
        w("memory", "memory.low", "1024".into(), "m"),
        w("memory", "memory.swap.max", "max".into(), "m"),
        w("cpu", "cpu.weight", "39".into(), "c"),
        w("pids", "pids.max", "0".into(), "p"),
        w("cpuset", "cpuset.cpus", "0-1,8".into(), "c"),
        w("cpu", "cpu.idle", "1".into(), "c"),
        w("io", "io.weight", "default 200".into(), "b"),
    ];
    let p = from_writes(&mut writes, true).unwrap();
    assert_eq!(
        names(&p),
        [
            "MemoryMax=U64(67108864)",
            "MemoryLow=U64(1024)",
            format!("MemorySwapMax=U64({})", u64::MAX).as_str(),
            "CPUWeight=U64(39)",
            // systemd refuses TasksMax=0; runc passes 1.
            "TasksMax=U64(1)",
            "AllowedCPUs=Bytes([3, 1])",
            "IOWeight=U64(200)",
        ]
    );
}

#[test]
fn v1_writes_map_onto_v1_properties() {
    let mut writes = vec![
        w("memory", "memory.limit_in_bytes", "1000".into(), "m"),
        w("cpu", "cpu.shares", "512".into(), "c"),
        w("pids", "pids.max", "max".into(), "p"),
        w("memory", "memory.max", "5".into(), "m"),
    ];
    let p = from_writes(&mut writes, false).unwrap();
    assert_eq!(
        names(&p),
        [
            "MemoryLimit=U64(1000)",
            "CPUShares=U64(512)",
            format!("TasksMax=U64({})", u64::MAX).as_str(),
        ]
    );
}

#[test]
fn negative_v1_limits_are_no_limit() {
    // The plan accepts any negative limit (found by the cgroup_plan fuzz
    // target: the systemd driver refused -2 as "not a number" where the
    // cgroupfs driver took it).
    let mut writes = vec![
        w("memory", "memory.limit_in_bytes", "-2".into(), "m"),
        w("memory", "memory.memsw.limit_in_bytes", "-1".into(), "m"),
    ];
    let p = from_writes(&mut writes, false).unwrap();
    // memsw has no property: it stays in the cgroup file.
    assert_eq!(names(&p), [format!("MemoryLimit=U64({})", u64::MAX)]);
    let mut bad = vec![w("memory", "memory.limit_in_bytes", "-x".into(), "m")];
    assert!(from_writes(&mut bad, false).is_err());
}

#[test]
fn cpu_quota_rounds_up_like_runc_and_fixes_the_file() {
    // 12345us per 100ms = 123450us/s, kept by systemd as 130000us/s.
    let mut writes = vec![w("cpu", "cpu.max", "12345 100000".into(), "q")];
    let p = from_writes(&mut writes, true).unwrap();
    assert_eq!(
        names(&p),
        [
            "CPUQuotaPeriodUSec=U64(100000)",
            "CPUQuotaPerSecUSec=U64(130000)"
        ]
    );
    assert_eq!(writes[0].value, "13000 100000");
    // Exact values are not touched; no period means the kernel default.
    let mut writes = vec![w("cpu", "cpu.max", "50000".into(), "q")];
    let p = from_writes(&mut writes, true).unwrap();
    assert_eq!(names(&p), ["CPUQuotaPerSecUSec=U64(500000)"]);
    assert_eq!(writes[0].value, "50000");
    // "max" lifts the quota.
    let mut writes = vec![w("cpu", "cpu.max", "max 20000".into(), "q")];
    let p = from_writes(&mut writes, true).unwrap();
    assert_eq!(
        names(&p),
        [
            "CPUQuotaPeriodUSec=U64(20000)",
            format!("CPUQuotaPerSecUSec=U64({})", u64::MAX).as_str()
        ]
    );
    let mut writes = vec![w(
        "cpu",
        "cpu.max",
        "1 2 3".into(),
        "linux.resources.unified",
    )];
    let e = from_writes(&mut writes, true).unwrap_err();
    assert!(e.to_string().starts_with("linux.resources.unified"), "{e}");
}

#[test]
fn cpu_lists_become_little_endian_masks() {
    assert_eq!(range_to_bits("0").unwrap(), [1]);
    assert_eq!(range_to_bits("1,3-5").unwrap(), [0b0011_1010]);
    assert_eq!(range_to_bits(" 9 ,").unwrap(), [0, 2]);
    assert_eq!(range_to_bits("0-15").unwrap(), [255, 255]);
    for bad in ["", ",", "3-1", "a", "1-", "-1", "99999999"] {
        assert!(range_to_bits(bad).is_err(), "{bad}");
    }
}

#[test]
fn base_properties_of_a_scope_and_a_slice() {
    let p = base("berth-x.scope", "system.slice", false, Some(42), true);
    let n = names(&p);
    assert!(
        n.contains(&"Slice=Str(\"system.slice\")".to_string()),
        "{n:?}"
    );
    assert!(n.contains(&"Delegate=Bool(true)".to_string()));
    assert!(n.contains(&"PIDs=U32s([42])".to_string()));
    assert!(n.contains(&"IOAccounting=Bool(true)".to_string()));
    let p = base("a-b.slice", "a.slice", true, None, false);
    let n = names(&p);
    assert!(
        n.contains(&"Wants=Strs([\"a.slice\"])".to_string()),
        "{n:?}"
    );
    assert!(n.contains(&"BlockIOAccounting=Bool(true)".to_string()));
    assert!(!n
        .iter()
        .any(|x| x.starts_with("Delegate") || x.starts_with("PIDs")));
}

#[test]
fn annotations_pass_through_as_runc_does() {
    let a: HashMap<String, String> = [
        ("org.systemd.property.TimeoutStopSec", "uint64 123"),
        ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
        ("org.systemd.property.CPUWeight", "uint64 7"),
        ("org.systemd.property.RuntimeMaxSec", "2.5"),
        ("org.systemd.property.Wants", "['a.service', \"b.service\"]"),
        ("org.systemd.property.IgnoreOnIsolate", "true"),
        ("other", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let p = from_annotations(&a).unwrap();
    assert_eq!(
        names(&p),
        [
            "CPUWeight=U64(7)",
            "CollectMode=Str(\"inactive-or-failed\")",
            "IgnoreOnIsolate=Bool(true)",
            "RuntimeMaxUSec=U64(2500000)",
            "TimeoutStopUSec=U64(123000000)",
            "Wants=Strs([\"a.service\", \"b.service\"])",
        ]
    );
    for (k, v) in [
        ("org.systemd.property.lower", "1"),
        ("org.systemd.property.Bad-Name", "1"),
        ("org.systemd.property.X", "1"),
        ("org.systemd.property.Foo", "nonsense"),
        ("org.systemd.property.TimeoutSec", "'str'"),
        ("org.systemd.property.Foo", "[1, 2]"),
    ] {
        let a = HashMap::from([(k.to_string(), v.to_string())]);
        let e = from_annotations(&a).unwrap_err();
        assert!(e.to_string().contains(k), "{k}={v}: {e}");
    }
}

#[test]
fn gvariant_numbers_default_to_int32() {
    assert_eq!(parse_gvariant("5").unwrap(), Value::I32(5));
    assert_eq!(parse_gvariant("int64 -5").unwrap(), Value::I64(-5));
    assert_eq!(parse_gvariant("byte 7").unwrap(), Value::Byte(7));
    assert_eq!(
        parse_gvariant("'it\\'s'").unwrap(),
        Value::Str("it's".into())
    );
    assert_eq!(
        parse_gvariant("string \"x\"").unwrap(),
        Value::Str("x".into())
    );
    assert!(parse_gvariant("uint32 -1").is_err());
    // No property takes them, and the helper's JSON cannot carry them.
    assert_eq!(parse_gvariant("double 0.5").unwrap(), Value::Double(0.5));
    for bad in ["double NaN", "double inf", "1e999"] {
        assert!(parse_gvariant(bad).is_err(), "{bad}");
    }
    assert!(parse_gvariant("'a'b'").is_err());
}

#[test]
fn device_allow_lists_become_device_allow() {
    use super::super::super::devices;
    let cfg: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":10,"minor":229,"access":"rw"},
            {"allow":true,"type":"b","major":8,"access":"r"}]"#,
    )
    .unwrap();
    let rules = devices::rules(Some(&cfg), None).unwrap();
    let p = devices(&rules);
    assert_eq!(p[0], ("DevicePolicy".into(), Value::Str("strict".into())));
    let Value::Pairs(allow) = &p[1].1 else {
        panic!("{p:?}")
    };
    let allow: Vec<String> = allow.iter().map(|(a, b)| format!("{a} {b}")).collect();
    assert_eq!(allow[..2], ["/dev/char/10:229 rw", "block-8 r"]);
    // then runc's defaults: mknod of anything, null, ..., pts
    assert!(allow.contains(&"char-* m".to_string()), "{allow:?}");
    assert!(allow.contains(&"/dev/char/1:3 rwm".to_string()));
    assert!(allow.contains(&"char-136 rwm".to_string()));

    // No deny-all: systemd's default policy, berth's filter alone.
    assert!(devices(&devices::rules(None, None).unwrap()).is_empty());
    // A rule systemd cannot name, or a deny after the allows: the same.
    for json in [
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","minor":5,"access":"r"}]"#,
        r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","access":"r"},
            {"allow":false,"type":"c","major":1,"minor":3,"access":"r"}]"#,
        r#"[{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}]"#,
    ] {
        let cfg: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        let rules = devices::rules(Some(&cfg), None).unwrap();
        assert!(devices(&rules).is_empty(), "{json}");
    }
}
