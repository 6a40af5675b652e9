//! Full container rootfs setup (prepare -> enter -> finalize) in a forked
//! child with its own mount namespace, checked from inside the container.

#[macro_use]
mod skip;
mod rootfs_util;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use berth::rootfs::{enter, finalize, prepare, RootfsOpts};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType, Spec};
use rootfs_util::*;

fn opts() -> RootfsOpts {
    RootfsOpts {
        no_pivot: false,
        new_mntns: true,
        in_userns: false,
    }
}

fn setup(spec: &Spec, s: &Scratch, o: &RootfsOpts) -> Result<(), String> {
    prepare(spec, &s.rootfs, &s.bundle, o).map_err(|e| format!("prepare: {e}"))?;
    enter(&s.rootfs, o).map_err(|e| format!("enter: {e}"))?;
    finalize(spec, o).map_err(|e| format!("finalize: {e}"))
}

fn has_opt(m: &MountLine, opt: &str) -> bool {
    m.options.iter().any(|o| o == opt)
}

fn expect_erofs(path: &str) -> Result<(), String> {
    match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
    {
        Err(e) if errno_of(&e) == libc::EROFS => Ok(()),
        other => Err(format!(
            "open {path} for writing: expected EROFS, got {other:?}"
        )),
    }
}

fn char_dev(path: &str, major: u32, minor: u32, mode: u32, uid: u32) -> Result<(), String> {
    let md = fs::symlink_metadata(path).map_err(|e| format!("{path}: {e}"))?;
    check(
        md.file_type().is_char_device(),
        format!("{path} is not a char device"),
    )?;
    let rdev = md.rdev();
    check(
        libc::major(rdev) == major && libc::minor(rdev) == minor,
        format!("{path} is {}:{}", libc::major(rdev), libc::minor(rdev)),
    )?;
    check(
        md.permissions().mode() & 0o7777 == mode,
        format!("{path} mode {:o}", md.mode()),
    )?;
    check(md.uid() == uid, format!("{path} uid {}", md.uid()))
}

/// With no cgroup namespace our pid shows up at the root of what was bound.
fn own_pid_in(procs: &str) -> Result<(), String> {
    let text = fs::read_to_string(procs).map_err(|e| format!("{procs}: {e}"))?;
    let me = std::process::id().to_string();
    check(
        text.lines().any(|l| l == me),
        format!("own pid not in {procs}"),
    )
}

fn host_is_cgroup2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

fn link_to(path: &str, target: &str) -> Result<(), String> {
    let t = fs::read_link(path).map_err(|e| format!("readlink {path}: {e}"))?;
    check(
        t == Path::new(target),
        format!("{path} -> {t:?}, want {target}"),
    )
}

/// The runc-like default config plus binds, tmpfs options and a device.
#[test]
fn default_spec_full_setup() {
    require_root!();
    let s = Scratch::new("full");
    let data = s.dir.join("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("hello"), "world").unwrap();
    fs::write(s.bundle.join("hostfile"), "from-bundle").unwrap();
    let marker = s.dir.join("host-marker");
    fs::write(&marker, "host").unwrap();

    let mut spec = default_spec();
    let d = data.to_str().unwrap();
    add_mounts(
        &mut spec,
        vec![
            mnt("/data", "bind", d, &["rbind", "ro", "rprivate"]),
            mnt("/rdata", "none", d, &["rbind", "rro"]),
            mnt("/etc/hostfile", "bind", "hostfile", &["bind"]),
            mnt("/ro-tmp", "tmpfs", "tmpfs", &["ro", "nosuid", "size=1m"]),
            mnt("/rw-tmp", "tmpfs", "tmpfs", &["mode=700", "noexec"]),
        ],
    );
    let mynull = LinuxDeviceBuilder::default()
        .path("/dev/mynull")
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .file_mode(0o600u32)
        .uid(1000u32)
        .gid(1000u32)
        .build()
        .unwrap();
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_devices(Some(vec![mynull]));
    let v2 = host_is_cgroup2();

    let res = in_child(CloneFlags::empty(), || {
        // A submount in the bind source: "rbind,ro" leaves it writable (only
        // the top is remounted, as in runc), "rro" makes it read-only too.
        nix::mount::mount(
            Some("tmpfs"),
            &data.join("sub"),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| format!("submount: {e}"))?;
        setup(&spec, &s, &opts())?;

        check(!marker.exists(), "host marker visible inside the container")?;
        check(
            fs::read_to_string("/data/hello").ok().as_deref() == Some("world"),
            "/data/hello",
        )?;
        check(
            fs::read_to_string("/etc/hostfile").ok().as_deref() == Some("from-bundle"),
            "hostfile",
        )?;

        let m = mount_at("/")?;
        check(has_opt(&m, "ro"), format!("root not ro: {m:?}"))?;
        expect_erofs("/newfile")?;

        check(mount_at("/proc")?.fstype == "proc", "/proc type")?;
        let dev = mount_at("/dev")?;
        check(
            dev.fstype == "tmpfs" && has_opt(&dev, "nosuid"),
            format!("{dev:?}"),
        )?;
        check(mount_at("/dev/pts")?.fstype == "devpts", "/dev/pts")?;
        let shm = mount_at("/dev/shm")?;
        check(
            ["nosuid", "nodev", "noexec"]
                .iter()
                .all(|o| has_opt(&shm, o)),
            format!("{shm:?}"),
        )?;
        check(mount_at("/dev/mqueue")?.fstype == "mqueue", "/dev/mqueue")?;
        let sys = mount_at("/sys")?;
        check(
            sys.fstype == "sysfs" && has_opt(&sys, "ro"),
            format!("{sys:?}"),
        )?;

        let data_m = mount_at("/data")?;
        check(has_opt(&data_m, "ro"), format!("/data not ro: {data_m:?}"))?;
        check(
            data_m.optional.is_empty(),
            format!("/data not private: {data_m:?}"),
        )?;
        check(
            !has_opt(&mount_at("/data/sub")?, "ro"),
            "/data/sub should stay rw",
        )?;
        check(has_opt(&mount_at("/rdata")?, "ro"), "/rdata not ro")?;
        check(
            has_opt(&mount_at("/rdata/sub")?, "ro"),
            "/rdata/sub not ro (rro)",
        )?;
        expect_erofs("/rdata/sub/x")?;
        fs::write("/data/sub/x", "ok").map_err(|e| format!("write /data/sub/x: {e}"))?;

        check(
            has_opt(&mount_at("/ro-tmp")?, "ro"),
            "/ro-tmp not ro after finalize",
        )?;
        expect_erofs("/ro-tmp/x")?;
        let rw = fs::metadata("/rw-tmp").map_err(|e| e.to_string())?;
        check(
            rw.permissions().mode() & 0o7777 == 0o700,
            format!("/rw-tmp mode {:o}", rw.mode()),
        )?;
        fs::write("/rw-tmp/x", "ok").map_err(|e| format!("write /rw-tmp/x: {e}"))?;

        // Masked paths: a file reads empty, a directory is an empty ro tmpfs.
        for f in ["/proc/keys", "/proc/timer_list"] {
            let v = fs::read(f).map_err(|e| format!("read {f}: {e}"))?;
            check(v.is_empty(), format!("{f} not masked"))?;
            check(mount_at(f).is_ok(), format!("{f} has no mask mount"))?;
        }
        if Path::new("/sys/firmware").exists() {
            let n = fs::read_dir("/sys/firmware")
                .map_err(|e| e.to_string())?
                .count();
            check(n == 0, "/sys/firmware not masked")?;
            expect_erofs("/sys/firmware/x")?;
        }
        // Readonly paths.
        expect_erofs("/proc/sys/vm/drop_caches")?;
        check(has_opt(&mount_at("/proc/sys")?, "ro"), "/proc/sys not ro")?;

        // Devices and links.
        char_dev("/dev/null", 1, 3, 0o666, 0)?;
        char_dev("/dev/zero", 1, 5, 0o666, 0)?;
        char_dev("/dev/full", 1, 7, 0o666, 0)?;
        char_dev("/dev/random", 1, 8, 0o666, 0)?;
        char_dev("/dev/urandom", 1, 9, 0o666, 0)?;
        char_dev("/dev/tty", 5, 0, 0o666, 0)?;
        char_dev("/dev/mynull", 1, 3, 0o600, 1000)?;
        link_to("/dev/fd", "/proc/self/fd")?;
        link_to("/dev/stdin", "/proc/self/fd/0")?;
        link_to("/dev/stdout", "/proc/self/fd/1")?;
        link_to("/dev/stderr", "/proc/self/fd/2")?;
        link_to("/dev/ptmx", "pts/ptmx")?;
        if fs::symlink_metadata("/dev/core").is_ok() {
            link_to("/dev/core", "/proc/kcore")?;
        }

        // Without a cgroup namespace only our own cgroup is bound in.
        if v2 {
            let cg = mount_at("/sys/fs/cgroup")?;
            check(
                cg.fstype == "cgroup2" && has_opt(&cg, "ro"),
                format!("{cg:?}"),
            )?;
            own_pid_in("/sys/fs/cgroup/cgroup.procs")?;
        } else {
            let cg = mount_at("/sys/fs/cgroup")?;
            check(
                cg.fstype == "tmpfs" && has_opt(&cg, "ro"),
                format!("{cg:?}"),
            )?;
            own_pid_in("/sys/fs/cgroup/memory/cgroup.procs")?;
            let mem = mount_at("/sys/fs/cgroup/memory")?;
            check(has_opt(&mem, "ro"), "memory cgroup not ro")?;
        }

        let st = std::process::Command::new("/bin/sh")
            .args(["-c", "cat /data/hello >/dev/null && ls / >/dev/null"])
            .status()
            .map_err(|e| format!("spawn busybox sh: {e}"))?;
        check(st.success(), "busybox sh failed inside the rootfs")
    });
    assert_eq!(res, Ok(()));
    assert!(
        host_mounts_under(&s.dir).is_empty(),
        "{:?}",
        host_mounts_under(&s.dir)
    );
}

/// With a cgroup namespace the hierarchies are real cgroup mounts.
#[test]
fn cgroup_namespace_mounts_real_hierarchies() {
    require_root!();
    let s = Scratch::new("cgns");
    let spec = Spec::default(); // includes a cgroup namespace
    let v2 = host_is_cgroup2();
    let res = in_child(CloneFlags::CLONE_NEWCGROUP, || {
        setup(&spec, &s, &opts())?;
        if v2 {
            let cg = mount_at("/sys/fs/cgroup")?;
            check(
                cg.fstype == "cgroup2" && has_opt(&cg, "ro"),
                format!("{cg:?}"),
            )?;
            return own_pid_in("/sys/fs/cgroup/cgroup.procs");
        }
        let mem = mount_at("/sys/fs/cgroup/memory")?;
        check(
            mem.fstype == "cgroup" && has_opt(&mem, "ro"),
            format!("{mem:?}"),
        )?;
        own_pid_in("/sys/fs/cgroup/memory/cgroup.procs")?;
        if Path::new("/sys/fs/cgroup/unified").exists() {
            check(
                mount_at("/sys/fs/cgroup/unified")?.fstype == "cgroup2",
                "unified",
            )?;
        }
        Ok(())
    });
    assert_eq!(res, Ok(()));
    assert!(host_mounts_under(&s.dir).is_empty());
}

/// In a user namespace nodes come from the host by bind mount; --no-pivot
/// moves the rootfs onto "/" and chroots.
#[test]
fn userns_device_binds_and_no_pivot() {
    require_root!();
    let s = Scratch::new("nopivot");
    let marker = s.dir.join("host-marker");
    fs::write(&marker, "host").unwrap();
    let spec = default_spec();
    // A bound node keeps the host's owner.
    let host_null_uid = fs::metadata("/dev/null").unwrap().uid();
    let o = RootfsOpts {
        no_pivot: true,
        new_mntns: true,
        in_userns: true,
    };
    let res = in_child(CloneFlags::empty(), || {
        setup(&spec, &s, &o)?;
        check(!marker.exists(), "host marker visible")?;
        check(
            mount_at("/dev/null").is_ok(),
            "/dev/null is not a bind mount",
        )?;
        char_dev("/dev/null", 1, 3, 0o666, host_null_uid)?;
        expect_erofs("/newfile")?;
        check(
            fs::read("/proc/keys")
                .map(|v| v.is_empty())
                .unwrap_or(false),
            "/proc/keys",
        )?;
        check(
            fs::read_dir("/").map_err(|e| e.to_string())?.count() > 3,
            "root listing",
        )
    });
    assert_eq!(res, Ok(()));
    assert!(host_mounts_under(&s.dir).is_empty());
}

/// A bind of the host's /dev gets no device nodes or links of ours.
#[test]
fn host_dev_bind_is_left_alone() {
    require_root!();
    let s = Scratch::new("devbind");
    let fake_dev = s.dir.join("fakedev");
    fs::create_dir(&fake_dev).unwrap();
    let mut spec = default_spec();
    spec.mounts_mut()
        .as_mut()
        .unwrap()
        .retain(|m| !m.destination().starts_with("/dev"));
    add_mounts(
        &mut spec,
        vec![mnt("/dev", "bind", fake_dev.to_str().unwrap(), &["rbind"])],
    );
    let linux = spec.linux_mut().as_mut().unwrap();
    linux.set_masked_paths(None);
    let res = in_child(CloneFlags::empty(), || setup(&spec, &s, &opts()));
    assert_eq!(res, Ok(()));
    assert_eq!(
        fs::read_dir(&fake_dev).unwrap().count(),
        0,
        "wrote into the bound /dev"
    );
    assert!(host_mounts_under(&s.dir).is_empty());
}

/// rootfsPropagation: "/" ends up with the requested propagation, and
/// pivot_root still works when it is shared.
#[test]
fn rootfs_propagation_values() {
    require_root!();
    for (value, shared) in [
        ("rshared", true),
        ("shared", true),
        ("private", false),
        ("rslave", false),
    ] {
        let s = Scratch::new("prop");
        let mut spec = default_spec();
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_rootfs_propagation(Some(value.into()));
        let res = in_child(CloneFlags::empty(), || {
            setup(&spec, &s, &opts())?;
            let root = mount_at("/")?;
            check(
                root.optional.contains("shared:") == shared,
                format!("{value}: / is {:?}", root.optional),
            )
        });
        assert_eq!(res, Ok(()), "{value}");
        assert!(host_mounts_under(&s.dir).is_empty());
    }
    let s = Scratch::new("prop");
    let mut spec = default_spec();
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_rootfs_propagation(Some("sideways".into()));
    // Even a config error is checked in a child: prepare() must never run
    // in the test's (host) mount namespace.
    let res = in_child(CloneFlags::empty(), || {
        match prepare(&spec, &s.rootfs, &s.bundle, &opts()) {
            Ok(()) => Err("bad rootfsPropagation accepted".into()),
            Err(e) => check(
                e.to_string().contains("linux.rootfsPropagation"),
                e.to_string(),
            ),
        }
    });
    assert_eq!(res, Ok(()));
}
