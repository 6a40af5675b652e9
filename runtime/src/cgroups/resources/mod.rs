//! The mapping of `linux.resources` onto cgroup v1 and v2 files, one
//! controller per file, with runc's choices of file and conversions (see
//! the module docs of `cgroups` for what is refused where). pids is one
//! file and written by the plan itself.

mod blkio;
mod cpu;
mod hugetlb;
mod memory;
mod net;
mod rdma;
mod unified;

pub(super) use blkio::block_io;
pub(super) use cpu::cpu;
#[cfg(test)]
pub(super) use cpu::shares_to_weight;
pub(super) use hugetlb::hugepages;
pub(super) use memory::memory;
pub(super) use net::network;
pub(super) use rdma::rdma;
pub(super) use unified::unified;

use std::borrow::Cow;

use super::CgroupError;

#[derive(Debug)]
pub(super) struct Write {
    /// The controller whose file this is (picks the v1 hierarchy, and the
    /// controller to enable on v2).
    pub controller: Cow<'static, str>,
    pub file: Cow<'static, str>,
    pub value: String,
    pub field: Cow<'static, str>,
    /// Skipped when the kernel has no such file.
    pub optional: bool,
    /// v1 memory: on EINVAL, do the next write (the swap limit) first and
    /// then retry this one, since memsw must never be below the limit.
    pub swap_first_on_einval: bool,
    /// When `file` does not exist, write this file and value instead
    /// (BFQ's weight file versus CFQ's or io.weight).
    pub fallback: Option<(&'static str, String)>,
    /// Hybrid host: the file lives in the cgroup2 directory (hugetlb).
    pub unified: bool,
}

pub(super) fn w(
    controller: &'static str,
    file: &'static str,
    value: String,
    field: &'static str,
) -> Write {
    Write {
        controller: Cow::Borrowed(controller),
        file: Cow::Borrowed(file),
        value,
        field: Cow::Borrowed(field),
        optional: false,
        swap_first_on_einval: false,
        fallback: None,
        unified: false,
    }
}

pub(super) fn not_on_v2(field: &str) -> CgroupError {
    CgroupError::Invalid {
        field: field.to_owned(),
        reason: "cgroup v2 has no such limit".into(),
    }
}

/// -1 (and any negative value) is "no limit".
pub(super) fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

pub(super) fn owned(controller: &'static str, file: String, value: String, field: String) -> Write {
    Write {
        file: Cow::Owned(file),
        field: Cow::Owned(field),
        ..w(controller, "", value, "")
    }
}
