//! Shared pieces of berth's OCI conformance suite: TAP output and parsing,
//! config access, capability names, mountinfo parsing and the cgroup
//! expectations that both the in-container checker (`berth-check`) and the
//! outside driver (`berth-conformance`) evaluate.

pub mod caps;
pub mod cgroup;
pub mod json;
pub mod mountinfo;
pub mod tap;
