//! fstab-style mount options of a config mount, split into what each
//! mechanism needs: MS_* flags for mount(2), MOUNT_ATTR_* for
//! mount_setattr(2), propagation changes, and filesystem data.

use std::path::Path;

use libc::c_ulong;

use super::RootfsError;
use crate::sys::MountAttr;

#[derive(Debug, Default, Clone)]
pub(crate) struct MountOptions {
    /// MS_* flags requested on.
    pub flags: c_ulong,
    /// MS_* flags explicitly requested off ("rw", "suid", ...).
    pub cleared: c_ulong,
    pub bind: bool,
    pub recursive_bind: bool,
    /// Propagation changes in order: (MS_SHARED etc., recursive).
    pub propagation: Vec<(c_ulong, bool)>,
    /// "r*" options, applied with mount_setattr(AT_RECURSIVE).
    pub rec_attr: MountAttr,
    /// Everything else, comma-joined for the filesystem.
    pub data: String,
    /// `idmap` (false) or `ridmap` (true) was given.
    pub idmap: Option<bool>,
    /// `tmpcopyup`: fill a new tmpfs with what it covers.
    pub copyup: bool,
}

// (option, sets the flag?, flag)
const FLAGS: &[(&str, bool, c_ulong)] = &[
    ("ro", true, libc::MS_RDONLY),
    ("rw", false, libc::MS_RDONLY),
    ("nosuid", true, libc::MS_NOSUID),
    ("suid", false, libc::MS_NOSUID),
    ("nodev", true, libc::MS_NODEV),
    ("dev", false, libc::MS_NODEV),
    ("noexec", true, libc::MS_NOEXEC),
    ("exec", false, libc::MS_NOEXEC),
    ("sync", true, libc::MS_SYNCHRONOUS),
    ("async", false, libc::MS_SYNCHRONOUS),
    ("dirsync", true, libc::MS_DIRSYNC),
    ("remount", true, libc::MS_REMOUNT),
    ("mand", true, libc::MS_MANDLOCK),
    ("nomand", false, libc::MS_MANDLOCK),
    ("atime", false, libc::MS_NOATIME),
    ("noatime", true, libc::MS_NOATIME),
    ("diratime", false, libc::MS_NODIRATIME),
    ("nodiratime", true, libc::MS_NODIRATIME),
    ("relatime", true, libc::MS_RELATIME),
    ("norelatime", false, libc::MS_RELATIME),
    ("strictatime", true, libc::MS_STRICTATIME),
    ("nostrictatime", false, libc::MS_STRICTATIME),
    ("nosymfollow", true, libc::MS_NOSYMFOLLOW),
    ("symfollow", false, libc::MS_NOSYMFOLLOW),
    ("lazytime", true, libc::MS_LAZYTIME),
    ("nolazytime", false, libc::MS_LAZYTIME),
    ("silent", true, libc::MS_SILENT),
    ("loud", false, libc::MS_SILENT),
    ("iversion", true, libc::MS_I_VERSION),
    ("noiversion", false, libc::MS_I_VERSION),
];

const PROPAGATION: &[(&str, c_ulong, bool)] = &[
    ("shared", libc::MS_SHARED, false),
    ("rshared", libc::MS_SHARED, true),
    ("slave", libc::MS_SLAVE, false),
    ("rslave", libc::MS_SLAVE, true),
    ("private", libc::MS_PRIVATE, false),
    ("rprivate", libc::MS_PRIVATE, true),
    ("unbindable", libc::MS_UNBINDABLE, false),
    ("runbindable", libc::MS_UNBINDABLE, true),
];

const A_RO: u64 = libc::MOUNT_ATTR_RDONLY;
const A_NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
const A_NODEV: u64 = libc::MOUNT_ATTR_NODEV;
const A_NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;
const A_NODIRATIME: u64 = libc::MOUNT_ATTR_NODIRATIME;
const A_NOSYMFOLLOW: u64 = libc::MOUNT_ATTR_NOSYMFOLLOW;

// (option, sets the attribute?, attribute) for the non-atime "r*" options.
const REC_ATTRS: &[(&str, bool, u64)] = &[
    ("rro", true, A_RO),
    ("rrw", false, A_RO),
    ("rnosuid", true, A_NOSUID),
    ("rsuid", false, A_NOSUID),
    ("rnodev", true, A_NODEV),
    ("rdev", false, A_NODEV),
    ("rnoexec", true, A_NOEXEC),
    ("rexec", false, A_NOEXEC),
    ("rnodiratime", true, A_NODIRATIME),
    ("rdiratime", false, A_NODIRATIME),
    ("rnosymfollow", true, A_NOSYMFOLLOW),
    ("rsymfollow", false, A_NOSYMFOLLOW),
];

// The atime modes are one enum in mount_setattr: each "r*atime" option picks
// a mode. Negations pick the mode the kernel would otherwise use, the
// default relatime: "ratime", "rnostrictatime", and "rnorelatime" too, as
// with runc and youki (whose "clear MOUNT_ATTR_RELATIME" clears the value
// 0, a no-op) and as berth's own "norelatime" on a fresh mount.
const REC_ATIME: &[(&str, u64)] = &[
    ("rrelatime", libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", libc::MOUNT_ATTR_RELATIME),
    ("rnoatime", libc::MOUNT_ATTR_NOATIME),
    ("ratime", libc::MOUNT_ATTR_RELATIME),
    ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", libc::MOUNT_ATTR_RELATIME),
];

/// Superblock flags: meaningless for a bind mount, which only has per-mount
/// attributes.
pub(crate) const SB_FLAGS: c_ulong = libc::MS_SYNCHRONOUS
    | libc::MS_DIRSYNC
    | libc::MS_MANDLOCK
    | libc::MS_LAZYTIME
    | libc::MS_SILENT
    | libc::MS_I_VERSION;

pub(crate) fn parse(options: &[String], dest: &Path) -> Result<MountOptions, RootfsError> {
    let mut o = MountOptions::default();
    for opt in options {
        let opt = opt.as_str();
        if let Some(&(_, set, flag)) = FLAGS.iter().find(|(n, ..)| *n == opt) {
            if set {
                o.flags |= flag;
                o.cleared &= !flag;
            } else {
                o.flags &= !flag;
                o.cleared |= flag;
            }
        } else if let Some(&(_, flag, rec)) = PROPAGATION.iter().find(|(n, ..)| *n == opt) {
            o.propagation.push((flag, rec));
        } else if let Some(&(_, set, attr)) = REC_ATTRS.iter().find(|(n, ..)| *n == opt) {
            if set {
                o.rec_attr.set |= attr;
                o.rec_attr.clr &= !attr;
            } else {
                o.rec_attr.set &= !attr;
                o.rec_attr.clr |= attr;
            }
        } else if let Some(&(_, mode)) = REC_ATIME.iter().find(|(n, ..)| *n == opt) {
            o.rec_attr.set = (o.rec_attr.set & !libc::MOUNT_ATTR__ATIME) | mode;
            o.rec_attr.clr |= libc::MOUNT_ATTR__ATIME;
        } else {
            match opt {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.recursive_bind = true;
                }
                "defaults" | "" => {}
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                "tmpcopyup" => o.copyup = true,
                // Userspace-only options (x-systemd.*, ...) that mount(8)
                // never passes to the kernel either.
                _ if opt.starts_with("x-") => {}
                _ => {
                    if !o.data.is_empty() {
                        o.data.push(',');
                    }
                    o.data.push_str(opt);
                }
            }
        }
    }
    if o.copyup && o.bind {
        return Err(RootfsError::Invalid {
            field: format!("mount {}", dest.display()),
            reason: "tmpcopyup applies to tmpfs mounts, not bind mounts".into(),
        });
    }
    Ok(o)
}

/// Every option `parse` gives a meaning to, for `berth features`. Anything
/// else is passed to the filesystem as data, which `features` cannot vouch for.
pub(crate) fn known() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = FLAGS.iter().map(|f| f.0).collect();
    v.extend(PROPAGATION.iter().map(|p| p.0));
    v.extend(REC_ATTRS.iter().map(|r| r.0));
    v.extend(REC_ATIME.iter().map(|r| r.0));
    v.extend(BIND);
    v
}

/// The bind, idmap and copy-up options `parse` matches below.
const BIND: [&str; 5] = ["bind", "rbind", "idmap", "ridmap", "tmpcopyup"];

impl MountOptions {
    /// The per-mount attributes to change on a bind mount, in mount_setattr
    /// terms. Unlike a bare MS_REMOUNT|MS_BIND this keeps flags the user did
    /// not mention (a nosuid source stays nosuid) and never has a window in
    /// which the mount is visible with the wrong flags. A request that only
    /// clears an atime mode keeps the existing mode, as a remount does.
    pub(crate) fn bind_attr(&self) -> MountAttr {
        const MAP: &[(c_ulong, u64)] = &[
            (libc::MS_RDONLY, A_RO),
            (libc::MS_NOSUID, A_NOSUID),
            (libc::MS_NODEV, A_NODEV),
            (libc::MS_NOEXEC, A_NOEXEC),
            (libc::MS_NODIRATIME, A_NODIRATIME),
            (libc::MS_NOSYMFOLLOW, A_NOSYMFOLLOW),
        ];
        let mut a = MountAttr::default();
        for &(ms, attr) in MAP {
            if self.flags & ms != 0 {
                a.set |= attr;
            } else if self.cleared & ms != 0 {
                a.clr |= attr;
            }
        }
        // Same precedence as mount(2): strictatime beats noatime beats relatime.
        let atime = if self.flags & libc::MS_STRICTATIME != 0 {
            Some(libc::MOUNT_ATTR_STRICTATIME)
        } else if self.flags & libc::MS_NOATIME != 0 {
            Some(libc::MOUNT_ATTR_NOATIME)
        } else if self.flags & libc::MS_RELATIME != 0 {
            Some(libc::MOUNT_ATTR_RELATIME)
        } else {
            None
        };
        if let Some(mode) = atime {
            a.set |= mode;
            a.clr |= libc::MOUNT_ATTR__ATIME;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> MountOptions {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        parse(&v, Path::new("/x")).unwrap()
    }

    #[test]
    fn flags_later_wins() {
        let o = p(&["ro", "nosuid", "rw"]);
        assert_eq!(o.flags, libc::MS_NOSUID);
        assert_eq!(o.cleared, libc::MS_RDONLY);
    }

    #[test]
    fn data_and_propagation() {
        let o = p(&[
            "nosuid",
            "mode=755",
            "size=65536k",
            "rprivate",
            "x-foo",
            "defaults",
        ]);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![(libc::MS_PRIVATE, true)]);
        assert!(!o.bind);
    }

    #[test]
    fn rbind_and_rec_attrs() {
        let o = p(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(
            o.rec_attr.set,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_attr.clr, libc::MOUNT_ATTR__ATIME);
        let o = p(&["rro", "rrw"]);
        assert_eq!(o.rec_attr.set, 0);
        assert_eq!(o.rec_attr.clr, libc::MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn bind_attr_keeps_unmentioned() {
        let a = p(&["bind", "ro", "exec"]).bind_attr();
        assert_eq!(a.set, libc::MOUNT_ATTR_RDONLY);
        assert_eq!(a.clr, libc::MOUNT_ATTR_NOEXEC);
        let a = p(&["bind", "noatime", "strictatime"]).bind_attr();
        assert_eq!(a.set, libc::MOUNT_ATTR_STRICTATIME);
        assert_eq!(a.clr, libc::MOUNT_ATTR__ATIME);
        assert!(p(&["bind", "norelatime"]).bind_attr().is_empty());
    }

    #[test]
    fn idmap_and_tmpcopyup_options() {
        assert_eq!(p(&["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(p(&["ridmap"]).idmap, Some(true));
        assert_eq!(p(&["rbind"]).idmap, None);
        let o = p(&["nosuid", "tmpcopyup", "mode=755"]);
        assert!(o.copyup);
        assert_eq!(o.data, "mode=755", "tmpcopyup is not filesystem data");
        let v = vec!["rbind".to_string(), "tmpcopyup".to_string()];
        let e = parse(&v, Path::new("/data")).unwrap_err().to_string();
        assert!(e.contains("tmpcopyup") && e.contains("/data"), "{e}");
    }
}
