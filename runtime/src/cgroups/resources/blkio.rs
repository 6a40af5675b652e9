//! blkio (v1) and io (v2).

use std::borrow::Cow;

use oci_spec::runtime::LinuxBlockIo;

use super::{not_on_v2, owned, w, Write};
use crate::cgroups::CgroupError;

/// runc's mapping of a blkio weight [10, 1000] onto io.weight [1, 10000].
fn blkio_to_io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// v1 prefers BFQ's weight files (kernels without CFQ have only those) and
/// falls back to CFQ's; v2 writes io.bfq.weight when BFQ offers it, else
/// io.weight with runc's conversion. Weight devices exist only with BFQ
/// on v2, and leaf weights only with CFQ on v1.
pub(crate) fn block_io(
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
