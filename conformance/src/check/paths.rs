//! linux.maskedPaths (covered by a mount: /dev/null or an empty read-only one) and linux.readonlyPaths (writes fail with EROFS).

use conformance::json::{at, strs};
use conformance::mountinfo;

use crate::{sys, Ctx, T};

/// A masked path must be covered by a mount, not merely unreadable: a file
/// by a bind of /dev/null (a char 1:3 node that reads empty), a directory
/// by a read-only mount listing nothing. A path absent from the container
/// has nothing to mask (runc skips it) and is a counted skip.
fn masked(t: &mut T, mounts: &[mountinfo::Mount], p: &str) {
    let meta = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return t.skip(format!("maskedPaths {p}"), "not in the container");
        }
        Err(e) => return t.error(format!("maskedPaths {p}: stat"), e),
    };
    let Some(m) = mountinfo::at(mounts, p) else {
        t.ok(
            false,
            format!("maskedPaths {p} is covered by a mount"),
            "no mount at that path",
        );
        return;
    };
    if meta.is_dir() {
        let first = std::fs::read_dir(p).map(|mut d| d.next().map(|e| e.map(|e| e.file_name())));
        let why = match first {
            Ok(None) if m.has("ro") => String::new(),
            Ok(None) => format!("{} mount is not read-only", m.fstype),
            Ok(Some(e)) => format!("lists {e:?}"),
            Err(e) => format!("cannot list it: {e}"),
        };
        t.ok(
            why.is_empty(),
            format!("maskedPaths {p}: an empty read-only mount covers the directory"),
            why,
        );
        return;
    }
    let st = sys::lstat(p);
    let null = st.as_ref().is_ok_and(|s| {
        s.st_mode & libc::S_IFMT == libc::S_IFCHR
            && (libc::major(s.st_rdev), libc::minor(s.st_rdev)) == (1, 3)
    });
    let read = std::fs::read(p).map(|b| b.len());
    t.ok(
        null && matches!(read, Ok(0)),
        format!("maskedPaths {p}: /dev/null is bound over the file"),
        format!(
            "mount {} ({}), node {:?}, read {read:?}",
            m.point,
            m.fstype,
            st.map(|s| s.st_rdev)
        ),
    );
}

pub fn check(cx: &Ctx, t: &mut T) {
    let mounts = mountinfo::read("self").unwrap_or_default();
    for p in strs(at(&cx.cfg, "linux.maskedPaths")) {
        masked(t, &mounts, &p);
    }
    for p in strs(at(&cx.cfg, "linux.readonlyPaths")) {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => {
                t.skip(
                    format!("readonlyPaths {p}"),
                    format!("not in the container: {e}"),
                );
                continue;
            }
        };
        let ro = mountinfo::at(&mounts, &p).is_some_and(|m| m.has("ro"));
        t.ok(
            ro,
            format!("readonlyPaths {p} is a ro mount"),
            "no ro mount at that path",
        );
        // Opening for writing (and writing nothing) proves the flag without side effects.
        let sv = sys::statvfs_ro(&p);
        t.eq(
            format!("readonlyPaths {p}: statvfs reports ST_RDONLY"),
            Ok(true),
            sv.map_err(|e| e.to_string()),
        );
        // On a file, opening for writing (and writing nothing) meets the flag.
        // On a directory, mkdir does, unless the filesystem (procfs) refuses
        // the name before checking the mount: then there is nothing to probe.
        if !meta.is_dir() {
            let err = sys::try_open(&p, libc::O_WRONLY).err().unwrap_or(0);
            t.eq(
                format!("readonlyPaths {p}: open for writing fails with EROFS"),
                libc::EROFS,
                err,
            );
            continue;
        }
        let probe = format!("{p}/.conformance-probe");
        match std::fs::create_dir(&probe) {
            Ok(()) => {
                let _ = std::fs::remove_dir(&probe);
                t.ok(
                    false,
                    format!("readonlyPaths {p}: mkdir fails with EROFS"),
                    "mkdir succeeded",
                );
            }
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => {
                t.ok(
                    true,
                    format!("readonlyPaths {p}: mkdir fails with EROFS"),
                    "",
                );
            }
            Err(e) => t.skip(
                format!("readonlyPaths {p}: mkdir probe"),
                format!("refused before the mount flag: {e}"),
            ),
        }
    }
}
