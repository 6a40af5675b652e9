//! The rootfs mounts containerd hands over in CreateTask (an overlay or a
//! bind of a snapshot), mounted on `<bundle>/rootfs` and removed at delete.

use std::path::{Path, PathBuf};

use containerd_shim_protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// Split mount(8)-style options into flags and the data string.
pub(crate) fn parse_options(opts: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in opts {
        let (set, f) = match o.as_str() {
            "ro" => (true, MsFlags::MS_RDONLY),
            "rw" => (false, MsFlags::MS_RDONLY),
            "nosuid" => (true, MsFlags::MS_NOSUID),
            "suid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (true, MsFlags::MS_NODEV),
            "dev" => (false, MsFlags::MS_NODEV),
            "noexec" => (true, MsFlags::MS_NOEXEC),
            "exec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (true, MsFlags::MS_SYNCHRONOUS),
            "async" => (false, MsFlags::MS_SYNCHRONOUS),
            "noatime" => (true, MsFlags::MS_NOATIME),
            "atime" => (false, MsFlags::MS_NOATIME),
            "nodiratime" => (true, MsFlags::MS_NODIRATIME),
            "relatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (true, MsFlags::MS_STRICTATIME),
            "bind" => (true, MsFlags::MS_BIND),
            "rbind" => (true, MsFlags::MS_BIND | MsFlags::MS_REC),
            "remount" => (true, MsFlags::MS_REMOUNT),
            "defaults" => (false, MsFlags::empty()),
            _ => {
                data.push(o.as_str());
                continue;
            }
        };
        if set {
            flags |= f;
        } else {
            flags &= !f;
        }
    }
    (flags, data.join(","))
}

/// The kernel copies at most a page of mount data.
const PAGE: usize = 4096;

/// containerd's answer to an overlay whose options exceed a page (many
/// layers): the lowerdirs relative to their common parent directory, for a
/// mount made with that directory as the working directory. None when the
/// options fit, the layers share no directory but `/`, or `lowerdir=` comes
/// more than once (the kernel keeps the last; which one to rewrite is then a
/// guess, so the options go to the kernel as they are).
pub(crate) fn compact_lowerdir(data: &str) -> Option<(PathBuf, String)> {
    if data.len() < PAGE {
        return None;
    }
    let opts: Vec<&str> = data.split(',').collect();
    let mut lowers = opts.iter().filter_map(|o| o.strip_prefix("lowerdir="));
    let lower = lowers.next()?;
    if lowers.next().is_some() {
        return None;
    }
    let dirs: Vec<&str> = lower.split(':').collect();
    if dirs.len() < 2 {
        return None;
    }
    let mut prefix = dirs[0];
    for d in &dirs[1..] {
        let n = prefix
            .bytes()
            .zip(d.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        prefix = &prefix[..n];
    }
    // Back to a whole directory: "/s/snapshots/1" of ".../12/fs" and
    // ".../13/fs" is "/s/snapshots".
    let common = match prefix.rfind('/') {
        Some(0) | None => return None,
        Some(i) => &prefix[..i],
    };
    let rel: Vec<&str> = dirs
        .iter()
        .map(|d| d.strip_prefix(common).map(|r| r.trim_start_matches('/')))
        .collect::<Option<_>>()?;
    let data = opts
        .iter()
        .map(|o| match o.strip_prefix("lowerdir=") {
            Some(_) => format!("lowerdir={}", rel.join(":")),
            None => (*o).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",");
    Some((PathBuf::from(common), data))
}

/// mount(2) from a thread of its own whose working directory is `cwd`
/// (CLONE_FS unshared, so the rest of the shim keeps its own).
fn mount_in(
    cwd: &Path,
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: &str,
) -> Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
                .map_err(Error::sys("unshare the working directory"))?;
            nix::unistd::chdir(cwd).map_err(Error::sys(format!("chdir {}", cwd.display())))?;
            mount(Some(source), target, fstype, flags, Some(data))
                .map_err(Error::sys("mount with compacted lowerdir"))
        })
        .join()
        .unwrap_or_else(|_| Err(Error::invalid("overlay mount", "its thread panicked")))
    })
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let (flags, data) = parse_options(&m.options);
    let fstype = (!m.type_.is_empty() && m.type_ != "bind").then_some(m.type_.as_str());
    let what = || format!("mount {} ({}) on {}", m.source, m.type_, target.display());
    match compact_lowerdir(&data).filter(|_| m.type_ == "overlay") {
        Some((cwd, short)) => {
            let target = std::path::absolute(target).map_err(Error::io("resolve", target))?;
            mount_in(&cwd, &m.source, &target, fstype, flags, &short).map_err(|e| {
                Error::invalid(
                    what(),
                    format!("{e} (lowerdirs relative to {})", cwd.display()),
                )
            })?;
        }
        None => {
            let data = (!data.is_empty()).then_some(data.as_str());
            mount(Some(m.source.as_str()), target, fstype, flags, data)
                .map_err(Error::sys(what()))?;
        }
    }
    // A read-only bind needs a remount: the first call ignores MS_RDONLY.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        let re = flags | MsFlags::MS_REMOUNT;
        mount(None::<&str>, target, None::<&str>, re, None::<&str>).map_err(Error::sys(
            format!("remount {} read-only", target.display()),
        ))?;
    }
    Ok(())
}

/// Mount `mounts` in order on `target`; on failure undo what was done.
pub fn mount_rootfs(mounts: &[Mount], target: &Path) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(target).map_err(Error::io("create rootfs", target))?;
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Unmount everything stacked on `target` (EINVAL: nothing mounted there).
pub fn unmount_all(target: &Path) -> Result<()> {
    loop {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(Error::Sys {
                    what: format!("unmount {}", target.display()),
                    source: e,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_flags_and_data() {
        let o: Vec<String> = ["ro", "nosuid", "lowerdir=/a:/b", "upperdir=/u", "rw"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (f, d) = parse_options(&o);
        assert_eq!(f, MsFlags::MS_NOSUID);
        assert_eq!(d, "lowerdir=/a:/b,upperdir=/u");
        let (f, d) = parse_options(&["rbind".to_string(), "ro".to_string()]);
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY);
        assert!(d.is_empty());
    }

    #[test]
    fn long_lowerdir_compacted_like_containerd() {
        let base = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";
        let lower: Vec<String> = (1..=60).rev().map(|i| format!("{base}/{i}/fs")).collect();
        let data = format!(
            "index=off,lowerdir={},upperdir={base}/61/fs,workdir={base}/61/work",
            lower.join(":")
        );
        assert!(data.len() > PAGE);
        let (cwd, short) = compact_lowerdir(&data).unwrap();
        assert_eq!(cwd, Path::new(base));
        assert!(short.len() < PAGE, "{}", short.len());
        assert!(
            short.starts_with("index=off,lowerdir=60/fs:59/fs:"),
            "{short}"
        );
        assert!(short.ends_with(&format!(
            ":1/fs,upperdir={base}/61/fs,workdir={base}/61/work"
        )));
        // Short options, one layer, or no common directory: as they are.
        assert!(compact_lowerdir("lowerdir=/a/1:/a/2").is_none());
        let long = format!("lowerdir=/{}", "x".repeat(PAGE));
        assert!(compact_lowerdir(&long).is_none());
        let spread = format!("lowerdir=/a{}:/b{}", "x".repeat(PAGE), "y".repeat(10));
        assert!(compact_lowerdir(&spread).is_none());
        // Two lowerdir options (a fuzzer's find): the second used to be
        // rewritten into the first's layers, longer than it was.
        let twice = format!("{data},lowerdir=/x:/y");
        assert!(compact_lowerdir(&twice).is_none());
    }
}
