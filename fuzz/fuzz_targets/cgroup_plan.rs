//! linux.cgroupsPath, linux.resources, linux.devices and the systemd
//! property annotations through the cgroup path rules, the plan builder and
//! the systemd property mapping, on a v1, two hybrid and a v2 host, with the
//! cgroupfs and the systemd driver (berth::cgroups::fuzz checks the
//! invariants). Nothing is created, written or sent on a bus.
#![no_main]

use std::collections::HashMap;

use berth::cgroups::{fuzz, Driver};
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxResources};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Input {
    #[serde(default)]
    cgroups_path: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    resources: Option<LinuxResources>,
    #[serde(default)]
    devices: Option<Vec<LinuxDevice>>,
    /// Device rules alone, when `resources` does not parse.
    #[serde(default)]
    rules: Option<Vec<LinuxDeviceCgroup>>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(i) = serde_json::from_slice::<Input>(data) else {
        return;
    };
    let id = i.id.as_deref().unwrap_or("fuzz");
    for host in 0..4 {
        for driver in [Driver::Cgroupfs, Driver::Systemd, Driver::SystemdUser] {
            fuzz::fuzz_plan(
                host,
                driver,
                i.cgroups_path.as_deref(),
                id,
                &i.annotations,
                i.resources.as_ref(),
                i.devices.as_deref(),
            );
        }
    }
    fuzz::fuzz_device_rules(i.rules.as_deref(), i.devices.as_deref());
});
