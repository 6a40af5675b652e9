//! linux.resources.unified: raw cgroup v2 files.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{invalid, owned, Write};
use crate::cgroups::CgroupError;

/// Raw cgroup v2 files, written last so that they override the typed
/// fields (as runc does). A key is one file name of the cgroup directory.
pub(crate) fn unified(
    out: &mut Vec<Write>,
    m: &HashMap<String, String>,
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
