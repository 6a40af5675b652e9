//! linux.maskedPaths (nothing readable) and linux.readonlyPaths (writes fail with EROFS).

use conformance::json::{at, strs};
use conformance::mountinfo;

use crate::{sys, Ctx, T};

pub fn check(cx: &Ctx, t: &mut T) {
    for p in strs(at(&cx.cfg, "linux.maskedPaths")) {
        let desc = format!("maskedPaths {p} is unreadable or empty");
        let r = match std::fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok("absent"),
            Err(_) => Ok("not accessible"),
            Ok(m) if m.is_dir() => match std::fs::read_dir(&p) {
                Ok(mut d) => match d.next() {
                    None => Ok("empty directory"),
                    Some(e) => Err(format!("directory lists {:?}", e.map(|e| e.file_name()))),
                },
                Err(_) => Ok("unreadable directory"),
            },
            Ok(_) => match std::fs::read(&p) {
                Ok(b) if b.is_empty() => Ok("empty"),
                Ok(b) => Err(format!("read {} bytes", b.len())),
                Err(_) => Ok("unreadable"),
            },
        };
        t.ok(r.is_ok(), desc, r.err().unwrap_or_default());
    }
    let mounts = mountinfo::read("self").unwrap_or_default();
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
