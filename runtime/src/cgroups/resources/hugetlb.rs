//! hugetlb.

use oci_spec::runtime::LinuxHugepageLimit;

use super::{invalid, owned, v2_limit, Write};
use crate::cgroups::CgroupError;

/// "2MB", "1GB", "64KB": digits and a unit, as the kernel names its sizes.
fn page_size_ok(size: &str) -> bool {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && matches!(&size[digits.len()..], "KB" | "MB" | "GB")
}

/// `v2_files`: `hugetlb.<size>.max` (pure v2, and hybrid hosts whose hugetlb
/// controller is on the cgroup2 mount) rather than v1's limit_in_bytes.
/// The reservation limit gets the same value where the kernel has it, so
/// that reserved but not yet faulted pages count too (as runc 1.2 does).
pub(crate) fn hugepages(
    out: &mut Vec<Write>,
    limits: &[LinuxHugepageLimit],
    v2_files: bool,
    unified: bool,
) -> Result<(), CgroupError> {
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        let size = l.page_size();
        if !page_size_ok(size) {
            return Err(invalid(
                format!("{field}.pageSize"),
                format!("{size:?} is not a page size such as \"2MB\""),
            ));
        }
        let (main, rsvd, value) = if v2_files {
            ("max", "rsvd.max", v2_limit(l.limit()))
        } else {
            (
                "limit_in_bytes",
                "rsvd.limit_in_bytes",
                l.limit().to_string(),
            )
        };
        let mut x = owned(
            "hugetlb",
            format!("hugetlb.{size}.{main}"),
            value.clone(),
            field.clone(),
        );
        x.unified = unified;
        let mut r = owned("hugetlb", format!("hugetlb.{size}.{rsvd}"), value, field);
        r.unified = unified;
        r.optional = true;
        out.push(x);
        out.push(r);
    }
    Ok(())
}
