//! net_cls and net_prio (v1 only).

use oci_spec::runtime::LinuxNetwork;

use super::{invalid, not_on_v2, owned, w, Write};
use crate::cgroups::CgroupError;

/// net_cls and net_prio exist on v1 only.
pub(crate) fn network(out: &mut Vec<Write>, n: &LinuxNetwork, v2: bool) -> Result<(), CgroupError> {
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
