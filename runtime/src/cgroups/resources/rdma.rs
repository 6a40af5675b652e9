//! rdma.

use std::collections::HashMap;

use oci_spec::runtime::LinuxRdma;

use super::{invalid, owned, Write};
use crate::cgroups::CgroupError;

pub(crate) fn rdma(
    out: &mut Vec<Write>,
    m: &HashMap<String, LinuxRdma>,
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
