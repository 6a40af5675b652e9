use std::collections::HashMap;

use super::*;

const V2_MI: &str = "28 20 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
const HYBRID_MI: &str = "\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
const HYBRID_CG: &str = "9:name=systemd:/user.slice\n4:memory:/user.slice\n0::/user.slice\n";

#[test]
fn resolve_places_the_unit_in_its_slice_on_every_layout() {
    let none = HashMap::new();
    let cg = resolve("0::/init.scope\n", V2_MI, None, &none, "c1", None).unwrap();
    assert_eq!(cg.unit(), Some("berth-c1.scope"));
    assert_eq!(cg.driver(), super::super::Driver::Systemd);
    let paths: Vec<_> = cg.paths().map(|p| p.display().to_string()).collect();
    assert_eq!(paths, ["/sys/fs/cgroup/system.slice/berth-c1.scope"]);

    let cg = resolve(
        HYBRID_CG,
        HYBRID_MI,
        Some("a-b.slice:p:n"),
        &none,
        "x",
        None,
    )
    .unwrap();
    let paths: Vec<_> = cg.paths().map(|p| p.display().to_string()).collect();
    assert_eq!(
        paths,
        [
            "/sys/fs/cgroup/systemd/a.slice/a-b.slice/p-n.scope",
            "/sys/fs/cgroup/memory/a.slice/a-b.slice/p-n.scope",
            "/sys/fs/cgroup/unified/a.slice/a-b.slice/p-n.scope",
        ]
    );
}

#[test]
fn the_unit_is_recorded_in_the_state_and_annotations_are_not() {
    let a = HashMap::from([(
        "org.systemd.property.CollectMode".to_string(),
        "'inactive-or-failed'".to_string(),
    )]);
    let cg = resolve("0::/\n", V2_MI, Some("k.slice:cri:1"), &a, "x", None).unwrap();
    assert_eq!(cg.systemd.as_ref().unwrap().extra.len(), 1);
    let json = serde_json::to_string(&cg).unwrap();
    assert!(json.contains("\"cri-1.scope\""), "{json}");
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.unit(), Some("cri-1.scope"));
    assert_eq!(back.systemd.unwrap().slice, "k.slice");
    // A state written before the driver existed reads as cgroupfs.
    let old = json.split(",\"systemd\"").next().unwrap().to_string() + "}";
    let back: Cgroup = serde_json::from_str(&old).unwrap();
    assert_eq!(back.driver(), super::super::Driver::Cgroupfs);
}

#[test]
fn bad_input_fails_at_resolve() {
    let none = HashMap::new();
    let e = resolve("0::/\n", V2_MI, Some("/abs/path"), &none, "x", None).unwrap_err();
    assert!(e.to_string().contains("linux.cgroupsPath"), "{e}");
    let a = HashMap::from([("org.systemd.property.X-Y".to_string(), "1".to_string())]);
    let e = resolve("0::/\n", V2_MI, None, &a, "x", None).unwrap_err();
    assert!(e.to_string().contains("org.systemd.property.X-Y"), "{e}");
}

#[test]
fn start_transient_unit_message_has_systemds_signature() {
    let props = props::base("berth-x.scope", "system.slice", false, Some(7), true);
    let aux: Vec<(&str, Vec<(&str, zbus::zvariant::Value)>)> = Vec::new();
    let msg = zbus::Message::method_call("/org/freedesktop/systemd1", "StartTransientUnit")
        .unwrap()
        .destination("org.freedesktop.systemd1")
        .unwrap()
        .interface("org.freedesktop.systemd1.Manager")
        .unwrap()
        .build(&("berth-x.scope", "replace", dbus::encode(&props), aux))
        .unwrap();
    // The header carries the body signature without the outer parentheses.
    assert_eq!(
        msg.header().signature().to_string_no_parens(),
        "ssa(sv)a(sa(sv))"
    );
    let mut all = props::base("u", "s", false, None, true);
    all.push(("AllowedCPUs".into(), props::Value::Bytes(vec![3])));
    all.push(("Wants".into(), props::Value::Strs(vec!["a".into()])));
    all.push((
        "DeviceAllow".into(),
        props::Value::Pairs(vec![("char-*".into(), "m".into())]),
    ));
    let encoded = dbus::encode(&all);
    let sig = |n: &str| {
        encoded
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.value_signature().to_string())
    };
    assert_eq!(sig("AllowedCPUs").as_deref(), Some("ay"));
    assert_eq!(sig("Wants").as_deref(), Some("as"));
    assert_eq!(sig("DeviceAllow").as_deref(), Some("a(ss)"));
    assert_eq!(sig("Delegate").as_deref(), Some("b"));
    assert_eq!(sig("Slice").as_deref(), Some("s"));
}

#[test]
fn a_users_instance_places_the_unit_below_its_manager() {
    let none = HashMap::new();
    let own = "0::/user.slice/user-1000.slice/session-3.scope\n";
    let cg = resolve(own, V2_MI, None, &none, "c1", Some(1000)).unwrap();
    assert_eq!(cg.driver(), super::super::Driver::SystemdUser);
    let paths: Vec<_> = cg.paths().map(|p| p.display().to_string()).collect();
    assert_eq!(
        paths,
        ["/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/berth-c1.scope"]
    );
    // Recorded, so that kill, update and delete use the user bus too.
    let json = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.driver(), super::super::Driver::SystemdUser);
    assert_eq!(back.systemd.unwrap().uid, 1000);
    let cg = resolve(
        own,
        V2_MI,
        Some("user.slice:libpod:ab"),
        &none,
        "x",
        Some(1000),
    )
    .unwrap();
    assert!(cg
        .paths()
        .all(|p| p.ends_with("user@1000.service/user.slice/libpod-ab.scope")));
    // As runc: not on cgroup v1.
    let e = resolve(HYBRID_CG, HYBRID_MI, None, &none, "x", Some(1000)).unwrap_err();
    assert!(e.to_string().contains("needs cgroup v2"), "{e}");
}
