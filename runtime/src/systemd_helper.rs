//! `berth-systemd`: the systemd cgroup driver's D-Bus helper, started by
//! berth and the shim (berth::cgroups::systemd::helper).

fn main() {
    std::process::exit(berth::cgroups::systemd::helper::main());
}
