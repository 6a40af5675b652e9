//! /dev contents: the default device nodes, linux.devices, and the standard
//! symlinks. Nodes are made with mknodat under a parent fd resolved inside
//! the rootfs (so a symlink in the image never leads outside it), or, in a
//! user namespace where mknod is refused, bind-mounted from the host.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::sys::stat::{umask, Mode};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use super::ctx::Ctx;
use super::mounts::{self, is_bind};
use super::options::MountOptions;
use super::resolve::{self, clean};
use super::RootfsError;
use crate::sys;

struct Device {
    path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    kind: libc::mode_t,
    major: u32,
    minor: u32,
    mode: libc::mode_t,
    uid: u32,
    gid: u32,
}

const DEFAULTS: &[(&str, u32, u32)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const LINKS: &[(&CStr, &CStr)] = &[
    (c"/proc/self/fd", c"fd"),
    (c"/proc/self/fd/0", c"stdin"),
    (c"/proc/self/fd/1", c"stdout"),
    (c"/proc/self/fd/2", c"stderr"),
];

fn err(path: &Path, op: &str) -> impl FnOnce(std::io::Error) -> RootfsError {
    let (path, op) = (path.to_path_buf(), op.to_string());
    move |source| RootfsError::Device { path, op, source }
}

fn invalid(path: &Path, reason: String) -> RootfsError {
    RootfsError::Invalid {
        field: format!("linux.devices {}", path.display()),
        reason,
    }
}

pub(crate) fn setup(ctx: &mut Ctx<'_>, spec: &Spec) -> Result<(), RootfsError> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let dev_path = Path::new("/dev");
    // A bind of the host's /dev already has its nodes; creating any would
    // write into the host's /dev.
    if mounts
        .iter()
        .any(|m| is_bind(m) && clean(m.destination()) == dev_path)
    {
        return Ok(());
    }
    let devpts = mounts.iter().any(|m| {
        m.typ().as_deref() == Some("devpts") && clean(m.destination()) == Path::new("/dev/pts")
    });
    let devices = device_list(spec)?;

    // Exact modes from mknod, without a chmod per node.
    let old_umask = umask(Mode::empty());
    let mut cache = None;
    let res = devices.iter().try_for_each(|d| create(ctx, &mut cache, d));
    umask(old_umask);
    res?;

    let dev = match cache {
        Some((p, fd)) if p == dev_path => fd,
        _ => ctx
            .root
            .mkdir_all(dev_path, &mut ctx.undo)
            .map_err(err(dev_path, "create directory"))?,
    };
    for (target, name) in LINKS {
        link(ctx, &dev, target, name)?;
    }
    if Path::new("/proc/kcore").exists() {
        link(ctx, &dev, c"/proc/kcore", c"core")?;
    }
    if devpts {
        match sys::unlinkat(dev.as_fd(), c"ptmx", 0) {
            Err(e) if !sys::is_errno(&e, libc::ENOENT) => {
                return Err(err(Path::new("/dev/ptmx"), "remove")(e))
            }
            _ => {}
        }
        link(ctx, &dev, c"pts/ptmx", c"ptmx")?;
    }
    Ok(())
}

fn link(
    ctx: &mut Ctx<'_>,
    dev: &Rc<OwnedFd>,
    target: &CStr,
    name: &CStr,
) -> Result<(), RootfsError> {
    match sys::symlinkat(target, dev.as_fd(), name) {
        Ok(()) => {
            if let Ok(st) = sys::fstatat_nofollow(dev.as_fd(), name) {
                ctx.undo.record(dev, name, &st);
            }
            Ok(())
        }
        // An image may ship its own; keep it as runc does.
        Err(e) if sys::is_errno(&e, libc::EEXIST) => Ok(()),
        Err(e) => {
            let path = Path::new("/dev").join(OsStr::new(name.to_str().unwrap_or("?")));
            Err(err(&path, "symlink")(e))
        }
    }
}

/// Defaults first, each replaced by a linux.devices entry for the same path.
fn device_list(spec: &Spec) -> Result<Vec<Device>, RootfsError> {
    let configured = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    let mut out: Vec<Device> = Vec::with_capacity(DEFAULTS.len() + configured.len());
    for &(path, major, minor) in DEFAULTS {
        out.push(Device {
            path: PathBuf::from(path),
            kind: libc::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    for d in configured {
        let path = clean(d.path());
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(invalid(
                    &path,
                    "type \"a\" is only valid in a cgroup rule".into(),
                ))
            }
        };
        let num = |v: i64, what: &str| {
            u32::try_from(v).map_err(|_| invalid(&path, format!("{what} {v} is out of range")))
        };
        let dev = Device {
            major: num(d.major(), "major")?,
            minor: num(d.minor(), "minor")?,
            kind,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
            path,
        };
        out.retain(|o| o.path != dev.path);
        out.push(dev);
    }
    // /dev/ptmx is the devpts symlink set up separately.
    out.retain(|d| d.path != Path::new("/dev/ptmx"));
    Ok(out)
}

fn rdev(d: &Device) -> libc::dev_t {
    if d.kind == libc::S_IFIFO {
        0
    } else {
        libc::makedev(d.major, d.minor)
    }
}

fn matches(d: &Device, st: &sys::Stat) -> bool {
    sys::file_type(st) == d.kind && (d.kind == libc::S_IFIFO || st.st_rdev == rdev(d))
}

/// The last parent directory looked up: devices mostly share /dev.
type ParentCache = Option<(PathBuf, Rc<OwnedFd>)>;

fn create(ctx: &mut Ctx<'_>, cache: &mut ParentCache, d: &Device) -> Result<(), RootfsError> {
    let (parent_path, name) =
        resolve::split(&d.path).ok_or_else(|| invalid(&d.path, "not a path to a file".into()))?;
    let name = sys::cstring(name).map_err(err(&d.path, "path"))?;
    let parent = match cache {
        Some((p, fd)) if p == parent_path => Rc::clone(fd),
        _ => {
            let fd = ctx
                .root
                .mkdir_all(parent_path, &mut ctx.undo)
                .map_err(err(&d.path, "create parent directory"))?;
            *cache = Some((parent_path.to_path_buf(), Rc::clone(&fd)));
            fd
        }
    };
    if ctx.opts.in_userns {
        return bind_from_host(ctx, d, &parent, &name);
    }
    match sys::mknodat(parent.as_fd(), &name, d.kind | d.mode, rdev(d)) {
        Ok(()) => {}
        Err(e) if sys::is_errno(&e, libc::EEXIST) => {
            let st = sys::fstatat_nofollow(parent.as_fd(), &name).map_err(err(&d.path, "stat"))?;
            return if matches(d, &st) {
                Ok(())
            } else {
                Err(invalid(
                    &d.path,
                    "the path exists in the rootfs and is not this device".into(),
                ))
            };
        }
        Err(e) if sys::is_errno(&e, libc::EPERM) => return bind_from_host(ctx, d, &parent, &name),
        Err(e) => return Err(err(&d.path, "mknod")(e)),
    }
    let st = sys::fstatat_nofollow(parent.as_fd(), &name).map_err(err(&d.path, "stat"))?;
    ctx.undo.record(&parent, &name, &st);
    if !matches(d, &st) {
        return Err(invalid(
            &d.path,
            "the node was replaced while being created".into(),
        ));
    }
    if st.st_mode & 0o7777 != d.mode {
        // Only a filesystem that ignores mknod's mode gets here.
        sys::fchmodat(parent.as_fd(), &name, d.mode).map_err(err(&d.path, "chmod"))?;
    }
    if st.st_uid != d.uid || st.st_gid != d.gid {
        let fd = sys::openat(parent.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)
            .map_err(err(&d.path, "open"))?;
        sys::fchown_fd(fd.as_fd(), d.uid, d.gid).map_err(err(&d.path, "chown"))?;
    }
    Ok(())
}

/// Bind the host's node of the same path onto an empty file.
fn bind_from_host(
    ctx: &mut Ctx<'_>,
    d: &Device,
    parent: &Rc<OwnedFd>,
    name: &CString,
) -> Result<(), RootfsError> {
    let host = sys::cstring(d.path.as_os_str()).map_err(err(&d.path, "path"))?;
    let tree = sys::open_tree(sys::CWD, &host, libc::OPEN_TREE_CLONE)
        .map_err(err(&d.path, "open host device"))?;
    let st = sys::fstat(tree.as_fd()).map_err(err(&d.path, "stat host device"))?;
    if !matches(d, &st) {
        return Err(invalid(
            &d.path,
            "the host's node at this path is a different device".into(),
        ));
    }
    let dst = mountpoint_file(ctx, parent, name).map_err(err(&d.path, "create mountpoint"))?;
    mounts::attach(ctx, &d.path, tree, dst.as_fd(), &MountOptions::default())
}

fn mountpoint_file(
    ctx: &mut Ctx<'_>,
    parent: &Rc<OwnedFd>,
    name: &CString,
) -> std::io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    match sys::openat(parent.as_fd(), name, flags, 0) {
        Ok(fd) => {
            ctx.undo.created(parent, name.clone(), fd.as_fd(), false)?;
            Ok(fd)
        }
        Err(e) if sys::is_errno(&e, libc::EEXIST) => {
            // Reuse what is there, but never through a symlink or onto a dir.
            let fd = sys::openat(parent.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            let st = sys::fstat(fd.as_fd())?;
            match sys::file_type(&st) {
                libc::S_IFLNK | libc::S_IFDIR => {
                    Err(std::io::Error::from_raw_os_error(libc::EEXIST))
                }
                _ => Ok(fd),
            }
        }
        Err(e) => Err(e),
    }
}
