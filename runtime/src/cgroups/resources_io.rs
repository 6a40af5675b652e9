//! blockIO, hugepageLimits, network, rdma and unified: their cgroup v1 and
//! v2 files, with runc's choices of file and conversions (see the module
//! docs of `cgroups` for what is refused where).

use std::borrow::Cow;

use oci_spec::runtime::{LinuxBlockIo, LinuxHugepageLimit, LinuxNetwork, LinuxRdma};

use super::resources::{not_on_v2, w, Write};
use super::CgroupError;

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn owned(controller: &'static str, file: String, value: String, field: String) -> Write {
    Write {
        file: Cow::Owned(file),
        field: Cow::Owned(field),
        ..w(controller, "", value, "")
    }
}

/// runc's mapping of a blkio weight [10, 1000] onto io.weight [1, 10000].
pub(super) fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// v1 prefers BFQ's weight files (kernels without CFQ have only those) and
/// falls back to CFQ's; v2 writes io.bfq.weight when BFQ offers it, else
/// io.weight with runc's conversion. Weight devices exist only with BFQ
/// on v2, and leaf weights only with CFQ on v1.
pub(super) fn block_io(
    out: &mut Vec<Write>,
    b: &LinuxBlockIo,
    v2: bool,
) -> Result<(), CgroupError> {
    const F: &str = "linux.resources.blockIO";
    if let Some(wt) = b.weight().filter(|&v| v != 0) {
        let mut x = w(
            "blkio",
            "",
            wt.to_string(),
            "linux.resources.blockIO.weight",
        );
        if v2 {
            x.controller = Cow::Borrowed("io");
            x.file = Cow::Borrowed("io.bfq.weight");
            x.fallback = Some(("io.weight", blkio_to_io_weight(wt).to_string()));
        } else {
            x.file = Cow::Borrowed("blkio.bfq.weight");
            x.fallback = Some(("blkio.weight", wt.to_string()));
        }
        out.push(x);
    }
    if let Some(lw) = b.leaf_weight().filter(|&v| v != 0) {
        if v2 {
            return Err(not_on_v2("linux.resources.blockIO.leafWeight"));
        }
        out.push(w(
            "blkio",
            "blkio.leaf_weight",
            lw.to_string(),
            "linux.resources.blockIO.leafWeight",
        ));
    }
    let ctrl = if v2 { "io" } else { "blkio" };
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let dev = format!("{}:{}", d.major(), d.minor());
        if let Some(wt) = d.weight().filter(|&v| v != 0) {
            let field = format!("{F}.weightDevice[{i}].weight");
            let mut x = owned(ctrl, String::new(), format!("{dev} {wt}"), field);
            if v2 {
                x.file = Cow::Borrowed("io.bfq.weight");
            } else {
                x.file = Cow::Borrowed("blkio.bfq.weight_device");
                x.fallback = Some(("blkio.weight_device", x.value.clone()));
            }
            out.push(x);
        }
        if let Some(lw) = d.leaf_weight().filter(|&v| v != 0) {
            let field = format!("{F}.weightDevice[{i}].leafWeight");
            if v2 {
                return Err(not_on_v2(&field));
            }
            let file = "blkio.leaf_weight_device".to_owned();
            out.push(owned(ctrl, file, format!("{dev} {lw}"), field));
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "read_bps_device",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "write_bps_device",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "read_iops_device",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "write_iops_device",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, v1_file, key, devs) in throttles {
        for (i, d) in devs.iter().flatten().enumerate() {
            let field = format!("{F}.{name}[{i}]");
            let dev = format!("{}:{}", d.major(), d.minor());
            let x = if v2 {
                // 0 lifts the limit, as it does on v1.
                let rate = match d.rate() {
                    0 => "max".to_owned(),
                    r => r.to_string(),
                };
                owned("io", "io.max".into(), format!("{dev} {key}={rate}"), field)
            } else {
                let file = format!("blkio.throttle.{v1_file}");
                owned("blkio", file, format!("{dev} {}", d.rate()), field)
            };
            out.push(x);
        }
    }
    Ok(())
}

/// "2MB", "1GB", "64KB": digits and a unit, as the kernel names its sizes.
fn page_size_ok(size: &str) -> bool {
    let digits = size.trim_end_matches(['K', 'M', 'G', 'B']);
    !digits.is_empty()
        && digits.bytes().all(|c| c.is_ascii_digit())
        && matches!(&size[digits.len()..], "KB" | "MB" | "GB")
}

/// `v2_files`: hugetlb.<size>.max (pure v2, and hybrid hosts whose hugetlb
/// controller is on the cgroup2 mount) rather than v1's limit_in_bytes.
/// The reservation limit gets the same value where the kernel has it, so
/// that reserved but not yet faulted pages count too (as runc 1.2 does).
pub(super) fn hugepages(
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
            ("max", "rsvd.max", super::resources::v2_limit(l.limit()))
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

/// net_cls and net_prio exist on v1 only.
pub(super) fn network(out: &mut Vec<Write>, n: &LinuxNetwork, v2: bool) -> Result<(), CgroupError> {
    if let Some(id) = n.class_id() {
        if v2 {
            return Err(not_on_v2("linux.resources.network.classID"));
        }
        out.push(w(
            "net_cls",
            "net_cls.classid",
            id.to_string(),
            "linux.resources.network.classID",
        ));
    }
    for (i, p) in n.priorities().iter().flatten().enumerate() {
        let field = format!("linux.resources.network.priorities[{i}]");
        if v2 {
            return Err(not_on_v2(&field));
        }
        let name = p.name();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(invalid(field, format!("bad interface name {name:?}")));
        }
        let value = format!("{name} {}", p.priority());
        out.push(owned("net_prio", "net_prio.ifpriomap".into(), value, field));
    }
    Ok(())
}

pub(super) fn rdma(
    out: &mut Vec<Write>,
    m: &std::collections::HashMap<String, LinuxRdma>,
) -> Result<(), CgroupError> {
    let mut devs: Vec<_> = m.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, r) in devs {
        let field = format!("linux.resources.rdma[{dev:?}]");
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(invalid(field, "bad device name"));
        }
        let mut value = dev.clone();
        if let Some(h) = r.hca_handles() {
            value.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = r.hca_objects() {
            value.push_str(&format!(" hca_object={o}"));
        }
        if value.len() == dev.len() {
            continue; // asks for nothing
        }
        out.push(owned("rdma", "rdma.max".into(), value, field));
    }
    Ok(())
}

/// Raw cgroup v2 files, written last so that they override the typed
/// fields (as runc does). A key is one file name of the cgroup directory.
pub(super) fn unified(
    out: &mut Vec<Write>,
    m: &std::collections::HashMap<String, String>,
    v2: bool,
) -> Result<(), CgroupError> {
    let mut keys: Vec<_> = m.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in keys {
        let field = format!("linux.resources.unified[{k:?}]");
        if !v2 {
            return Err(invalid(field, "needs a pure cgroup v2 host"));
        }
        if k.is_empty() || k.contains('/') || k.contains("..") || !k.contains('.') {
            return Err(invalid(field, "not a cgroup file name"));
        }
        let ctrl = &k[..k.find('.').unwrap_or(0)];
        let mut x = owned("", k.clone(), v.clone(), field);
        // cgroup.* files are the core's, with no controller to enable.
        x.controller = if ctrl == "cgroup" {
            Cow::Borrowed("")
        } else {
            Cow::Owned(ctrl.to_owned())
        };
        out.push(x);
    }
    Ok(())
}
