//! TEMP STUB
use nix::mount::{mount, MsFlags};
use std::path::Path;
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RootfsError(String);
pub struct RootfsOpts {
    pub no_pivot: bool,
    pub new_mntns: bool,
    pub in_userns: bool,
}
fn e(x: nix::Error) -> RootfsError {
    RootfsError(x.to_string())
}
pub fn prepare(
    _s: &oci_spec::runtime::Spec,
    rootfs: &Path,
    _b: &Path,
    _o: &RootfsOpts,
) -> Result<(), RootfsError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(e)?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(e)?;
    mount(
        Some("proc"),
        &rootfs.join("proc"),
        Some("proc"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(e)?;
    Ok(())
}
pub fn enter(rootfs: &Path, _o: &RootfsOpts) -> Result<(), RootfsError> {
    nix::unistd::chdir(rootfs).map_err(e)?;
    nix::unistd::pivot_root(".", ".").map_err(e)?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(e)?;
    nix::unistd::chdir("/").map_err(e)?;
    Ok(())
}
pub fn finalize(_s: &oci_spec::runtime::Spec, _o: &RootfsOpts) -> Result<(), RootfsError> {
    Ok(())
}
