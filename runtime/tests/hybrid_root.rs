//! On a hybrid host, berth runs hugetlb on the cgroup2 mount when no v1
//! hierarchy has it, which needs the controller switched on in the unified
//! root: berth switches it off again once no container uses it, and never
//! touches what it did not switch on.

mod common;
#[macro_use]
mod skip;

use common::Bundle;
use serde_json::json;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn root_has_hugetlb() -> bool {
    std::fs::read_to_string(format!("{UNIFIED}/cgroup.subtree_control"))
        .unwrap()
        .split_whitespace()
        .any(|c| c == "hugetlb")
}

fn running_with_hugetlb(tag: &str) -> Bundle {
    let mut b = Bundle::new(tag);
    b.args(&["sleep", "100"]);
    b.config["linux"]["cgroupsPath"] = json!(format!("/{}", b.name));
    b.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": "2MB", "limit": 4194304}]);
    b.cgroup = format!("/{}", b.name);
    b.ok(&["run", "-d", "-b", b.dir.to_str().unwrap(), &b.id()]);
    b
}

#[test]
fn unified_root_hugetlb_switched_off_after_the_last_user() {
    require_root!();
    let controllers = std::fs::read_to_string(format!("{UNIFIED}/cgroup.controllers"));
    if !controllers.is_ok_and(|c| c.split_whitespace().any(|c| c == "hugetlb")) {
        skip!("not a hybrid host whose cgroup2 mount offers hugetlb");
    }
    if std::path::Path::new("/sys/fs/cgroup/hugetlb").exists() {
        skip!("hugetlb has a v1 hierarchy here: berth does not use the cgroup2 mount for it");
    }
    if !std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists() {
        skip!("no 2MB huge pages on this kernel");
    }
    if root_has_hugetlb() {
        skip!("hugetlb is already on in {UNIFIED}/cgroup.subtree_control (not berth's doing, or in use): berth leaves it");
    }
    let a = running_with_hugetlb("hugeroota");
    assert!(
        root_has_hugetlb(),
        "hugetlb not switched on for the container"
    );
    let b = running_with_hugetlb("hugerootb");
    a.ok(&["delete", "-f", &a.id()]);
    a.assert_clean();
    assert!(
        root_has_hugetlb(),
        "switched off while another container uses it"
    );
    b.ok(&["delete", "-f", &b.id()]);
    b.assert_clean();
    assert!(
        !root_has_hugetlb(),
        "hugetlb left on in the host's unified root"
    );
}
