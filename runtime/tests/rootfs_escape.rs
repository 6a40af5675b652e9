//! Hostile images and bad configs: symlinks must never lead a mount or a
//! device outside the rootfs, errors must name what failed, and a failed
//! prepare() must leave no mount and no created inode behind.

#[macro_use]
mod skip;
mod rootfs_util;

use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::Path;

use berth::rootfs::{enter, finalize, prepare, RootfsOpts};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType, LinuxIdMapping, Spec};
use rootfs_util::*;

fn opts(new_mntns: bool) -> RootfsOpts {
    RootfsOpts {
        no_pivot: false,
        new_mntns,
        in_userns: false,
    }
}

fn dev(path: &str) -> oci_spec::runtime::LinuxDevice {
    LinuxDeviceBuilder::default()
        .path(path)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .build()
        .unwrap()
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Absolute and relative symlinks in the image that point at a host
/// directory, and /dev itself a symlink: everything lands inside the rootfs.
#[test]
fn symlinks_never_redirect_to_host() {
    require_root!();
    let s = Scratch::new("escape");
    let host_dir = s.dir.join("host-target");
    fs::create_dir(&host_dir).unwrap();
    let host_etc_probe = Path::new("/etc/berth-escape-probe");
    assert!(!host_etc_probe.exists());
    // The same path inside the rootfs exists, so the links resolve there.
    let inner = s.rootfs.join(host_dir.strip_prefix("/").unwrap());
    fs::create_dir_all(&inner).unwrap();
    let rel = format!(
        "{}{}",
        "../".repeat(12),
        host_dir.strip_prefix("/").unwrap().display()
    );
    symlink(&host_dir, s.rootfs.join("abs")).unwrap();
    symlink(&rel, s.rootfs.join("rel")).unwrap();
    symlink("/etc", s.rootfs.join("etclink")).unwrap();
    fs::remove_dir(s.rootfs.join("dev")).unwrap();
    symlink(&host_dir, s.rootfs.join("dev")).unwrap();
    fs::write(s.bundle.join("hostfile"), "from-bundle").unwrap();

    let mut spec = default_spec();
    // No /dev mount: the default nodes go through the /dev symlink.
    spec.mounts_mut()
        .as_mut()
        .unwrap()
        .retain(|m| !m.destination().starts_with("/dev"));
    add_mounts(
        &mut spec,
        vec![
            mnt("/abs/m1", "tmpfs", "tmpfs", &[]),
            mnt("/rel/m2", "tmpfs", "tmpfs", &[]),
            mnt("/etclink/berth-escape-probe", "bind", "hostfile", &["bind"]),
        ],
    );
    let linux = spec.linux_mut().as_mut().unwrap();
    linux.set_devices(Some(vec![dev("/abs/node1"), dev("/rel/node2")]));
    // /dev/null lives behind the symlink too; masking must still find it.
    let inner_s = inner.to_string_lossy().into_owned();
    let res = in_child(CloneFlags::empty(), || {
        let o = opts(true);
        prepare(&spec, &s.rootfs, &s.bundle, &o).map_err(|e| format!("prepare: {e}"))?;
        enter(&s.rootfs, &o).map_err(|e| format!("enter: {e}"))?;
        finalize(&spec, &o).map_err(|e| format!("finalize: {e}"))?;
        let inner_path = inner_s
            .strip_prefix(&*s.rootfs.to_string_lossy())
            .unwrap_or("");
        check(
            mount_at(&format!("{inner_path}/m1")).is_ok(),
            "m1 not at the in-rootfs target",
        )?;
        check(
            mount_at(&format!("{inner_path}/m2")).is_ok(),
            "m2 not at the in-rootfs target",
        )?;
        let probe = fs::read_to_string("/etc/berth-escape-probe").map_err(|e| e.to_string())?;
        check(probe == "from-bundle", "probe bind")
    });
    assert_eq!(res, Ok(()));
    assert_eq!(
        count(&host_dir),
        0,
        "something was created in the host directory"
    );
    assert!(
        !host_etc_probe.exists(),
        "created a file in the host's /etc"
    );
    // ...and it all went to the copy inside the rootfs instead.
    for n in ["m1", "m2", "node1", "node2", "null", "tty"] {
        assert!(
            inner.join(n).symlink_metadata().is_ok(),
            "{n} missing in rootfs"
        );
    }
    assert!(fs::symlink_metadata(inner.join("null"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(s.rootfs.join("etc/berth-escape-probe").exists());
    assert!(host_mounts_under(&s.dir).is_empty());
}

/// A dangling link to a host directory: the mount fails, the host is
/// untouched, and the rollback removes what was created.
#[test]
fn dangling_symlink_fails_without_touching_host() {
    require_root!();
    let s = Scratch::new("dangling");
    let host_dir = s.dir.join("host-target");
    fs::create_dir(&host_dir).unwrap();
    symlink(&host_dir, s.rootfs.join("abs")).unwrap();
    let spec = spec_with(vec![
        mnt("/newdir/a", "tmpfs", "tmpfs", &[]),
        mnt("/abs/m", "tmpfs", "tmpfs", &[]),
    ]);
    let res = run_expect_err(&s, &spec, &["/abs/m"]);
    assert_eq!(res, Ok(()));
    assert_eq!(count(&host_dir), 0);
    assert!(
        !s.rootfs.join("newdir").exists(),
        "rollback left /newdir behind"
    );
}

/// A minimal config: only the given mounts, no masked/readonly paths.
fn spec_with(mounts: Vec<oci_spec::runtime::Mount>) -> Spec {
    let mut spec = default_spec();
    spec.set_mounts(Some(mounts));
    let linux = spec.linux_mut().as_mut().unwrap();
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    spec.root_mut().as_mut().unwrap().set_readonly(Some(false));
    spec
}

/// prepare() must fail with a message containing every `needles` entry, and
/// leave no mount under the rootfs even in the child's own namespace.
fn run_expect_err(s: &Scratch, spec: &Spec, needles: &[&str]) -> Result<(), String> {
    in_child(CloneFlags::empty(), || {
        let err = match prepare(spec, &s.rootfs, &s.bundle, &opts(true)) {
            Ok(()) => return Err("prepare succeeded".into()),
            Err(e) => e.to_string(),
        };
        for n in needles {
            check(
                err.contains(n),
                format!("error {err:?} does not mention {n:?}"),
            )?;
        }
        check(!err.contains('\n'), "multi-line error")?;
        let left: Vec<_> = mountinfo()
            .into_iter()
            .filter(|m| Path::new(&m.mountpoint).starts_with(&s.rootfs))
            .collect();
        check(
            left.is_empty(),
            format!("mounts left after failure: {left:?}"),
        )
    })
}

#[test]
fn bad_mount_option_is_reported_and_rolled_back() {
    require_root!();
    let s = Scratch::new("badopt");
    let spec = spec_with(vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/made/here", "tmpfs", "tmpfs", &["size=1m"]),
        mnt("/made/bad", "tmpfs", "tmpfs", &["nosuid", "bogus_opt=1"]),
    ]);
    assert_eq!(
        run_expect_err(&s, &spec, &["/made/bad", "bogus_opt=1"]),
        Ok(())
    );
    assert!(
        !s.rootfs.join("made").exists(),
        "rollback left /made behind"
    );
    assert!(
        s.rootfs.join("proc").is_dir(),
        "rollback removed a pre-existing dir"
    );
    assert!(host_mounts_under(&s.dir).is_empty());
}

#[test]
fn unsupported_fields_are_named() {
    require_root!();
    let s = Scratch::new("unsupported");
    // idmap with no mappings anywhere (the spec has no user namespace).
    let spec = spec_with(vec![mnt("/x", "bind", "/tmp", &["rbind", "idmap"])]);
    assert_eq!(
        run_expect_err(&s, &spec, &["idmap", "/x", "uidMappings"]),
        Ok(())
    );

    let mut m = mnt("/y", "bind", "/tmp", &["rbind"]);
    m.set_uid_mappings(Some(vec![LinuxIdMapping::default()]));
    m.set_gid_mappings(Some(vec![LinuxIdMapping::default()]));
    let spec = spec_with(vec![m]);
    assert_eq!(run_expect_err(&s, &spec, &["uidMappings", "/y"]), Ok(()));

    let spec = spec_with(vec![mnt("/z", "bind", "/tmp", &["rbind", "sync"])]);
    assert_eq!(run_expect_err(&s, &spec, &["/z", "bind"]), Ok(()));
    assert!(host_mounts_under(&s.dir).is_empty());
}

/// Mounting over procfs files through an alias is refused.
#[test]
fn proc_overmount_is_refused() {
    require_root!();
    let s = Scratch::new("procover");
    symlink("/proc/sys", s.rootfs.join("psys")).unwrap();
    let spec = spec_with(vec![
        mnt("/proc", "proc", "proc", &[]),
        mnt("/psys", "tmpfs", "tmpfs", &[]),
    ]);
    assert_eq!(run_expect_err(&s, &spec, &["/psys", "procfs"]), Ok(()));
    let spec = spec_with(vec![mnt("/proc", "tmpfs", "tmpfs", &[])]);
    assert_eq!(run_expect_err(&s, &spec, &["/proc"]), Ok(()));
}

/// Without a new mount namespace mounts land in the caller's namespace; a
/// failure must unmount them and remove the mountpoints it made.
#[test]
fn no_mntns_failure_unmounts_everything() {
    require_root!();
    let s = Scratch::new("nomntns");
    let data = s.dir.join("data");
    fs::create_dir(&data).unwrap();
    let d = data.to_str().unwrap();
    let spec = spec_with(vec![
        mnt("/a", "tmpfs", "tmpfs", &[]),
        mnt("/b/c", "bind", d, &["rbind", "ro"]),
        mnt("/d/e", "tmpfs", "tmpfs", &["no_such_option"]),
    ]);
    // The child's own mount namespace plays "the caller's namespace".
    let res = in_child(CloneFlags::empty(), || {
        let err = prepare(&spec, &s.rootfs, &s.bundle, &opts(false));
        check(err.is_err(), "prepare succeeded")?;
        let left: Vec<_> = mountinfo()
            .into_iter()
            .filter(|m| Path::new(&m.mountpoint).starts_with(&s.rootfs))
            .collect();
        check(left.is_empty(), format!("mounts left: {left:?}"))?;
        for p in ["a", "b", "d"] {
            check(!s.rootfs.join(p).exists(), format!("/{p} left behind"))?;
        }
        Ok(())
    });
    assert_eq!(res, Ok(()));
    assert!(host_mounts_under(&s.dir).is_empty());
}
