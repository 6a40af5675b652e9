//! One config mount, checked and dispatched: a bind mount, a cgroup mount
//! (cgroup.rs, built from several mounts) or a new filesystem, with the
//! sysfs fallback of a user namespace.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::Mount;

use super::ctx::Ctx;
use super::mounts::{bind, bind_tree, fresh, idmap_of, invalid};
use super::options::{self, MountOptions};
use super::resolve::clean;
use super::{cgroup, RootfsError};

pub(super) fn mount_entry(
    ctx: &mut Ctx<'_>,
    m: &Mount,
    tree: Option<OwnedFd>,
) -> Result<(), RootfsError> {
    let dest = clean(m.destination());
    let o = options::parse(m.options().as_deref().unwrap_or(&[]), &dest)?;
    if dest == Path::new("/") {
        return Err(invalid(
            &dest,
            "mounting over the container root is not supported",
        ));
    }
    let typ = m.typ().as_deref().unwrap_or("");
    if o.copyup && typ != "tmpfs" {
        return Err(invalid(
            &dest,
            format!("tmpcopyup applies to tmpfs, not {typ:?}"),
        ));
    }
    let idmap = idmap_of(&ctx.user_maps, m, &o, &dest)?;
    if idmap.is_some() && !(o.bind || typ == "bind") {
        return Err(invalid(
            &dest,
            "idmap, ridmap and uid/gidMappings are supported for bind mounts only",
        ));
    }
    if o.bind || typ == "bind" {
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| invalid(&dest, "a bind mount needs a source"))?;
        let source = if source.is_absolute() {
            source.to_path_buf()
        } else {
            ctx.bundle.join(source)
        };
        if let Some(tree) = tree {
            return bind_tree(ctx, tree, &dest, None, &o);
        }
        return bind(ctx, &source, &dest, None, &o, idmap.as_ref());
    }
    if typ.is_empty() {
        return Err(invalid(
            &dest,
            "type is required unless the mount is a bind mount",
        ));
    }
    let source = m
        .source()
        .as_deref()
        .map_or(OsStr::new(typ), Path::as_os_str);
    if typ == "cgroup" {
        return cgroup::mount(ctx, &dest, &o);
    }
    match fresh(ctx, typ, source, &dest, &o, false) {
        Err(RootfsError::Mount { source: e, .. })
            if typ == "sysfs" && ctx.opts.in_userns && e.raw_os_error() == Some(libc::EPERM) =>
        {
            sysfs_bind(ctx, &dest, &o)
        }
        r => r.map(drop),
    }
}

/// The kernel gives a user namespace a new sysfs only together with a
/// network namespace it owns; without one, /sys is the host's, bound
/// recursively with the mount's flags (crun's fallback, and what `spec
/// --rootless` writes).
fn sysfs_bind(ctx: &mut Ctx<'_>, dest: &Path, o: &MountOptions) -> Result<(), RootfsError> {
    crate::logging::debug(|| {
        format!(
            "mount {}: sysfs refused in this user namespace, binding the host's /sys",
            dest.display()
        )
    });
    let mut b = o.clone();
    b.bind = true;
    b.recursive_bind = true;
    b.data.clear();
    bind(ctx, Path::new("/sys"), dest, None, &b, None)
}
