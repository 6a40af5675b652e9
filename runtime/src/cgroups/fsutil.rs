//! Small cgroupfs file helpers. Control files are written with one open and
//! one write(2) each: the kernel parses each write as a whole, so a split
//! write would be two different (and wrong) commands.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CgroupError, Dir};

pub(super) fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    write_once(&mut OpenOptions::new().write(true).open(path)?, data)
}

/// One write(2) of all of `data`: a cgroup file takes a value per write,
/// so a short write is an error, not something to continue.
fn write_once(f: &mut File, data: &[u8]) -> io::Result<()> {
    let n = f.write(data)?;
    if n != data.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write ({n} of {} bytes)", data.len()),
        ));
    }
    Ok(())
}

/// Writes that keep the last file open, so that a run of writes to one
/// file (v1 device rules, one rule per write) opens and walks to it once.
#[derive(Default)]
pub(super) struct Writer {
    last: Option<(PathBuf, File)>,
}

impl Writer {
    pub(super) fn write(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.last.as_ref().is_none_or(|(p, _)| p != path) {
            self.last = None;
            let f = OpenOptions::new().write(true).open(path)?;
            self.last = Some((path.to_owned(), f));
        }
        let (_, f) = self.last.as_mut().expect("opened above");
        write_once(f, data)
    }
}

/// Read a whole (small, pseudo) file without the size probe std does:
/// cgroupfs and procfs report size 0 anyway.
pub(super) fn read_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub(super) fn read_proc(path: &str) -> Result<String, CgroupError> {
    read_file(Path::new(path)).map_err(|source| CgroupError::Read {
        path: path.into(),
        source,
    })
}

pub(super) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)?;
    Ok(f.into())
}

/// The directory `k` levels above the leaf (0: the leaf itself; `levels`:
/// the mount point). A `k` beyond the path's root gives "/".
pub(super) fn ancestor(dir: &Dir, k: u16) -> &Path {
    dir.path
        .ancestors()
        .nth(usize::from(k))
        .unwrap_or(Path::new("/"))
}

fn mkdir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(0o755).create(path)
}

/// mkdir -p of `dir.path`, never above its mount point, recording in
/// `dir.created` how many trailing components were made here.
pub(super) fn mkdir_p(dir: &Dir) -> Result<(), CgroupError> {
    let err = |path: &Path, source| CgroupError::Mkdir {
        path: path.to_owned(),
        source,
    };
    // Walk up until a mkdir succeeds; the usual case is one mkdir of the leaf.
    let mut top = 0;
    let mut made: u16 = loop {
        let p = ancestor(dir, top);
        match mkdir(p) {
            Ok(()) => break 1,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if top == 0 {
                    return Ok(()); // pre-existing leaf: joined, not created
                }
                break 0; // another runtime made this parent meanwhile
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && top + 1 < dir.levels => top += 1,
            Err(e) => return Err(err(p, e)),
        }
    };
    for k in (0..top).rev() {
        let p = ancestor(dir, k);
        match mkdir(p) {
            Ok(()) => made += 1,
            // Raced by another runtime: it owns this parent, and ours above
            // it are no longer a suffix of our path, so they stay.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => made = 0,
            Err(e) => {
                for j in (k + 1)..(k + 1 + made) {
                    let _ = std::fs::remove_dir(ancestor(dir, j));
                }
                return Err(err(p, e));
            }
        }
    }
    dir.created.set(made);
    Ok(())
}

/// rmdir a cgroup and every cgroup below it (made inside the container),
/// retrying briefly on EBUSY while its last processes finish exiting.
fn rmdir_tree(path: &Path) -> io::Result<()> {
    let mut delay = Duration::from_millis(2);
    for attempt in 0..8 {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 7 => {
                if attempt == 0 {
                    for entry in std::fs::read_dir(path)?.flatten() {
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            rmdir_tree(&entry.path())?;
                        }
                    }
                    continue;
                }
                std::thread::sleep(delay);
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the last attempt returns")
}

/// Remove what mkdir_p made for `dir`, deepest first.
pub(super) fn remove_created(dir: &Dir) -> Result<(), CgroupError> {
    let n = dir.created.get();
    if n == 0 {
        return Ok(());
    }
    rmdir_tree(&dir.path).map_err(|source| CgroupError::Rmdir {
        path: dir.path.clone(),
        source,
    })?;
    for k in 1..n {
        let p = ancestor(dir, k);
        match std::fs::remove_dir(p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Still holding another container's cgroup: that one removes it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => break,
            Err(source) => {
                dir.created.set(n - k);
                return Err(CgroupError::Rmdir {
                    path: p.to_owned(),
                    source,
                });
            }
        }
    }
    dir.created.set(0);
    switch_off(dir);
    Ok(())
}

/// Where berth notes, on a cgroup it does not own, the controllers it
/// switched on in its cgroup.subtree_control: an xattr of the cgroup, so the
/// note lives exactly as long as the cgroup and is shared by every container.
const SWITCHED_ON: &str = "trusted.berth.switched_on";

fn switched_on(path: &Path) -> Vec<String> {
    let mut buf = vec![0u8; 256];
    match rustix::fs::getxattr(path, SWITCHED_ON, &mut buf[..]) {
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn set_switched_on(path: &Path, ctrls: &[String]) {
    // Best effort: without the note the controller just stays on, as before.
    let _ = if ctrls.is_empty() {
        rustix::fs::removexattr(path, SWITCHED_ON)
    } else {
        let v = ctrls.join(" ");
        rustix::fs::setxattr(
            path,
            SWITCHED_ON,
            v.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
    };
}

/// Note that berth switched `ctrls` on at `path`.
pub(super) fn mark_switched_on(path: &Path, ctrls: &[&str]) {
    if ctrls.is_empty() {
        return;
    }
    let mut now = switched_on(path);
    for c in ctrls {
        if !now.iter().any(|n| n == c) {
            now.push((*c).to_owned());
        }
    }
    set_switched_on(path, &now);
}

/// Switch off, deepest first, what berth switched on in the ancestors of
/// `dir` and no cgroup below uses any more; a level where one still does
/// keeps it, and so do its ancestors. Best effort: the container is gone
/// either way.
fn switch_off(dir: &Dir) {
    // Only the cgroup2 hierarchy's ancestors are ever noted.
    if !dir.is_unified() {
        return;
    }
    for at in dir.path.ancestors().skip(1).take(usize::from(dir.levels)) {
        let noted = switched_on(at);
        if noted.is_empty() {
            continue;
        }
        let (busy, idle): (Vec<String>, Vec<String>) =
            noted.into_iter().partition(|c| used_below(at, c));
        if !idle.is_empty() {
            let off: Vec<String> = idle.iter().map(|c| format!("-{c}")).collect();
            // The kernel refuses (EBUSY) while a child enables it further down.
            if write_file(&at.join("cgroup.subtree_control"), off.join(" ").as_bytes()).is_err() {
                return;
            }
        }
        set_switched_on(at, &busy);
        if !busy.is_empty() {
            return;
        }
    }
}

/// "max", or what hugetlb shows for no limit: the largest page-aligned
/// value (2^63 - 4096 here), so anything that large.
fn unlimited(v: &str) -> bool {
    v == "max" || v.parse::<u64>().is_ok_and(|n| n >= 1 << 62)
}

/// Whether a child cgroup of `path` uses controller `c`: enables it for its
/// own children, or sets one of its limits (a `c.*max` file not unlimited).
fn used_below(path: &Path, c: &str) -> bool {
    let Ok(children) = std::fs::read_dir(path) else {
        return true;
    };
    for child in children.flatten() {
        if !child.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let sub = read_file(&child.path().join("cgroup.subtree_control")).unwrap_or_default();
        if sub.split_whitespace().any(|s| s == c) {
            return true;
        }
        let Ok(files) = std::fs::read_dir(child.path()) else {
            return true;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&format!("{c}."))
                && name.ends_with("max")
                && read_file(&f.path()).is_ok_and(|v| !unlimited(v.trim()))
            {
                return true;
            }
        }
    }
    false
}
