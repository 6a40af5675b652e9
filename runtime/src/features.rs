//! `berth features`: the runtime-spec Features structure (features.md).
//! Every list comes from the table the implementation itself uses, so the
//! report cannot drift from what `create` accepts. As the spec asks, it
//! describes berth, not the host: the one exception is seccomp's
//! supportedFlags, which the spec defines as what this kernel accepts.

use oci_spec::runtime::{
    ApparmorBuilder, CgroupBuilder, Features, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
    LinuxFeature, LinuxFeatureBuilder, MemoryPolicyBuilder, MountExtensionsBuilder,
    NetDevicesBuilder, SeccompBuilder, SelinuxBuilder,
};

use crate::error::{Error, Result};

/// The oldest config version berth accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";
/// The newest spec whose fields berth knows (it parses netDevices and
/// memoryPolicy, which 1.3.0 added, if only to refuse them by name).
pub const OCI_VERSION_MAX: &str = "1.3.0";

pub fn features() -> Result<Features> {
    FeaturesBuilder::default()
        .oci_version_min(OCI_VERSION_MIN)
        .oci_version_max(OCI_VERSION_MAX)
        .hooks(crate::hooks::KINDS.map(String::from).to_vec())
        .mount_options(
            crate::rootfs::known_mount_options()
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
        .linux(linux()?)
        .build()
        .map_err(build_err)
}

fn linux() -> Result<LinuxFeature> {
    use crate::seccomp::known;
    let name = |v: serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let seccomp = SeccompBuilder::default()
        .enabled(true)
        .actions(known::actions().to_vec())
        .operators(
            known::operators()
                .iter()
                .map(|o| name(serde_json::json!(o)))
                .collect::<Vec<_>>(),
        )
        .archs(known::archs().collect::<Vec<_>>())
        .known_flags(known::flags().map(|f| f.to_string()).collect::<Vec<_>>())
        .supported_flags(
            known::flags()
                .filter(|f| known::flag_supported(*f))
                .map(|f| f.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(build_err)?;
    let cgroup = CgroupBuilder::default()
        .v1(true)
        .v2(true)
        // --systemd-cgroup: a transient unit on the system bus; no user bus
        // (rootless) yet. linux.resources.rdma is refused.
        .systemd(cfg!(feature = "systemd"))
        .systemd_user(false)
        .rdma(false)
        .build()
        .map_err(build_err)?;
    LinuxFeatureBuilder::default()
        .namespaces(crate::namespaces::ORDER.to_vec())
        .capabilities(capabilities())
        .cgroup(cgroup)
        .seccomp(seccomp)
        .apparmor(
            ApparmorBuilder::default()
                .enabled(crate::lsm::APPARMOR)
                .build()
                .map_err(build_err)?,
        )
        .selinux(
            SelinuxBuilder::default()
                .enabled(crate::lsm::SELINUX)
                .build()
                .map_err(build_err)?,
        )
        .memory_policy(
            MemoryPolicyBuilder::default()
                .modes(
                    crate::placement::MODES
                        .iter()
                        .map(|(m, _)| m.to_string())
                        .collect::<Vec<_>>(),
                )
                .flags(
                    crate::placement::FLAGS
                        .iter()
                        .map(|(f, _)| f.to_string())
                        .collect::<Vec<_>>(),
                )
                .build()
                .map_err(build_err)?,
        )
        .intel_rdt(
            IntelRdtBuilder::default()
                .enabled(false)
                .build()
                .map_err(build_err)?,
        )
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(
                    IDMapBuilder::default()
                        .enabled(true)
                        .build()
                        .map_err(build_err)?,
                )
                .build()
                .map_err(build_err)?,
        )
        .net_devices(
            NetDevicesBuilder::default()
                .enabled(true)
                .build()
                .map_err(build_err)?,
        )
        .build()
        .map_err(build_err)
}

/// The names `security` can apply: those of the caps crate that the
/// config parser (oci-spec) also knows, in kernel order.
fn capabilities() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter()
        .map(|c| c.to_string())
        .filter(|n| {
            serde_json::from_value::<oci_spec::runtime::Capability>(n.clone().into()).is_ok()
        })
        .collect()
}

fn build_err(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("features: {e}"))
}

/// The JSON `berth features` prints.
pub fn json() -> Result<String> {
    serde_json::to_string_pretty(&features()?).map_err(Error::encode("features"))
}
