//! The container's root filesystem: mounts, /dev, pivot_root, masked and
//! readonly paths. Runs in the container init, in its mount namespace.
//!
//! INTERFACE (called from `process` in this order; keep these signatures):
//!
//! ```ignore
//! /// Before pivot: set "/" propagation (rootfsPropagation, default rslave),
//! /// bind the rootfs onto itself, perform `mounts` in order (every path
//! /// resolved inside the rootfs with pathrs/openat2 RESOLVE_IN_ROOT; a
//! /// symlink never leads to a host path), create default devices +
//! /// linux.devices (mknod, or bind from host when in a user namespace),
//! /// /dev/{fd,stdin,stdout,stderr,ptmx} links. `bundle` is the absolute bundle
//! /// dir (relative mount sources are relative to it). When `new_mntns` is false
//! /// the mounts happen in the caller's namespace and "/" is left alone.
//! pub fn prepare(spec: &Spec, rootfs: &Path, bundle: &Path, opts: &RootfsOpts) -> Result<(), RootfsError>;
//! /// pivot_root into rootfs (or chroot when opts.no_pivot or !opts.new_mntns).
//! pub fn enter(rootfs: &Path, opts: &RootfsOpts) -> Result<(), RootfsError>;
//! /// After pivot: maskedPaths, readonlyPaths, root.readonly, and the final
//! /// rootfsPropagation of "/".
//! pub fn finalize(spec: &Spec, opts: &RootfsOpts) -> Result<(), RootfsError>;
//! pub struct RootfsOpts { pub no_pivot: bool, pub new_mntns: bool, pub in_userns: bool }
//! ```
