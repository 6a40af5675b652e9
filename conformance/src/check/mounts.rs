//! mounts (type, source, flags, data options, propagation), the default
//! filesystems, root.readonly and linux.rootfsPropagation, via /proc/self/mountinfo.

use serde_json::Value;

use conformance::json::{arr, bool_at, str_at, strs};
use conformance::mountinfo::{self, Mount};

use crate::{sys, Ctx, T};

const DEFAULT_FS: [(&str, &str); 4] = [
    ("/proc", "proc"),
    ("/sys", "sysfs"),
    ("/dev/pts", "devpts"),
    ("/dev/shm", "tmpfs"),
];

pub fn check(cx: &Ctx, t: &mut T) {
    let mounts = match mountinfo::read("self") {
        Ok(m) => m,
        Err(e) => return t.error("read /proc/self/mountinfo", e),
    };
    for m in arr(&cx.cfg, "mounts") {
        one(cx, t, &mounts, m);
    }
    for (point, fstype) in DEFAULT_FS {
        let got = mountinfo::at(&mounts, point).map(|m| m.fstype.as_str());
        t.eq(format!("default filesystem {point}"), Some(fstype), got);
    }
    root(cx, t, &mounts);
}

fn one(cx: &Ctx, t: &mut T, mounts: &[Mount], m: &Value) {
    let dest = str_at(m, "destination").unwrap_or("?");
    let opts = strs(m.get("options"));
    let Some(got) = mountinfo::at(mounts, dest) else {
        return t.error(format!("mount {dest}"), "nothing mounted there");
    };
    let ty = str_at(m, "type").unwrap_or("");
    let bind = ty == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
    if bind {
        // A bind shows the source's filesystem; the host told us its inode.
        let want = cx
            .host
            .get("bindino")
            .and_then(|b| b.get(dest))
            .and_then(Value::as_u64);
        match want {
            Some(ino) => {
                t.eq(
                    format!("mount {dest}: bind of the source"),
                    Ok(ino),
                    sys::stat_ino(dest).map_err(|e| e.to_string()),
                );
            }
            None => t.skip(
                format!("mount {dest}: bind source"),
                "driver gave no source inode",
            ),
        }
    } else {
        // A "cgroup" mount may be a tmpfs holding one mount per v1 hierarchy.
        let ok_types: &[&str] = if ty == "cgroup" {
            &["cgroup", "cgroup2", "tmpfs"]
        } else {
            &[ty]
        };
        let why = format!("want {ty}, got {}", got.fstype);
        t.ok(
            ok_types.contains(&got.fstype.as_str()),
            format!("mount {dest}: type {ty}"),
            why,
        );
        if let Some(src) = str_at(m, "source").filter(|_| ty != "cgroup") {
            t.eq(format!("mount {dest}: source"), src, &got.source);
        }
    }
    // runc-style v1: a tmpfs holding one mount per hierarchy; the flags
    // belong on those (the tmpfs itself is the runtime's scaffolding).
    let subs: Vec<&Mount> = if ty == "cgroup" && got.fstype == "tmpfs" {
        mounts
            .iter()
            .filter(|m| m.parent == got.id && m.fstype == "cgroup")
            .collect()
    } else {
        vec![got]
    };
    for o in &opts {
        for m in &subs {
            option(t, &m.point, o, m);
        }
    }
}

/// What a flag or data option must look like in mountinfo; `None` for
/// options with no visible trace (newinstance, bind, ...).
fn expect(o: &str, got: &Mount) -> Option<Result<(), String>> {
    let has = |f: &str| got.has(f);
    let r = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("options {:?} {}", got.opts, got.propagation()))
        }
    };
    let prop = got.propagation();
    Some(match o {
        "ro" | "rw" | "nosuid" | "nodev" | "noexec" | "noatime" | "nodiratime" | "relatime" => {
            r(has(o))
        }
        "suid" | "dev" | "exec" => r(!has(&format!("no{o}"))),
        "strictatime" => r(!has("noatime") && !has("relatime")),
        "shared" | "rshared" => r(prop.contains("shared")),
        // Making a mount whose peers are all private a slave leaves it private.
        "slave" | "rslave" => r(prop.contains("slave") || prop == "private"),
        "private" | "rprivate" => r(prop == "private"),
        "unbindable" | "runbindable" => r(prop == "unbindable"),
        _ => {
            let (k, v) = o.split_once('=')?;
            let want = match k {
                // The kernel prints modes in octal with at least three digits.
                "mode" | "ptmxmode" => format!("{k}={:03o}", u32::from_str_radix(v, 8).ok()?),
                "uid" | "gid" => format!("{k}={}", sys::to_host_id(k, v.parse().ok()?)),
                "size" => format!("size={}k", size_bytes(v)? / 1024),
                _ => return None,
            };
            // tmpfs prints no mode when it is the default 1777.
            let default = got.fstype == "tmpfs" && want == "mode=1777";
            if got.has_super(&want)
                || (default && !got.super_opts.iter().any(|s| s.starts_with("mode=")))
            {
                Ok(())
            } else {
                Err(format!("superblock options {:?}", got.super_opts))
            }
        }
    })
}

fn size_bytes(v: &str) -> Option<u64> {
    let (num, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1 << 10),
        'm' | 'M' => (&v[..v.len() - 1], 1 << 20),
        'g' | 'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

fn option(t: &mut T, dest: &str, o: &str, got: &Mount) {
    if let Some(r) = expect(o, got) {
        t.ok(
            r.is_ok(),
            format!("mount {dest}: option {o}"),
            r.err().unwrap_or_default(),
        );
    }
}

fn root(cx: &Ctx, t: &mut T, mounts: &[Mount]) {
    let Some(rm) = mountinfo::at(mounts, "/") else {
        return t.error("root mount", "nothing mounted at /");
    };
    if bool_at(&cx.cfg, "root.readonly") {
        t.ok(
            rm.has("ro"),
            "root.readonly: / is mounted ro",
            format!("options {:?}", rm.opts),
        );
        // SAFETY: the path is a NUL-terminated literal.
        let r = unsafe { libc::mkdir(c"/.conformance-ro-probe".as_ptr(), 0o700) };
        let err = if r == 0 { 0 } else { sys::errno() };
        if r == 0 {
            // SAFETY: as above.
            unsafe { libc::rmdir(c"/.conformance-ro-probe".as_ptr()) };
        }
        t.eq(
            "root.readonly: mkdir in / fails with EROFS",
            libc::EROFS,
            err,
        );
    } else {
        t.skip("root.readonly", "false");
    }
    match str_at(&cx.cfg, "linux.rootfsPropagation") {
        Some(p) => {
            let got = rm.propagation();
            let ok = match p {
                "shared" | "rshared" => got.contains("shared"),
                "slave" | "rslave" => got.contains("slave") || got == "private",
                "private" | "rprivate" => got == "private",
                "unbindable" | "runbindable" => got == "unbindable",
                _ => false,
            };
            t.ok(
                ok,
                format!("linux.rootfsPropagation {p}"),
                format!("/ is {got}"),
            );
        }
        None => t.skip("linux.rootfsPropagation", "not set"),
    }
}
