//! Thin wrappers over the few syscalls the checks need.

use std::ffi::CString;
use std::io;

pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn lstat(path: &str) -> io::Result<libc::stat> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is a valid out-pointer.
    if unsafe { libc::lstat(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

pub fn stat_ino(path: &str) -> io::Result<u64> {
    std::fs::metadata(path).map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

/// open(2) with `flags`, closing at once; the errno on failure.
pub fn try_open(path: &str, flags: i32) -> Result<(), i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: c is NUL-terminated; the fd is closed right away.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    unsafe { libc::close(fd) };
    Ok(())
}

pub fn uname() -> (String, String) {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out-pointer.
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.nodename), s(&u.domainname))
}

pub fn groups() -> Vec<u32> {
    // SAFETY: a NULL list with size 0 only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut g = vec![0 as libc::gid_t; n.max(0) as usize];
    // SAFETY: g has room for n entries.
    let n = unsafe { libc::getgroups(n, g.as_mut_ptr()) };
    g.truncate(n.max(0) as usize);
    g
}

pub fn ids() -> (u32, u32, u32, u32) {
    // SAFETY: these cannot fail.
    unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    }
}

/// Whether the mount holding `path` is read-only, per statvfs(2).
pub fn statvfs_ro(path: &str) -> io::Result<bool> {
    let c = CString::new(path).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and sv a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut sv) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sv.f_flag & libc::ST_RDONLY != 0)
}

/// Maps a container uid/gid to the host's, through /proc/self/{uid,gid}_map
/// (mount options print ids as the initial namespace sees them).
pub fn to_host_id(kind: &str, id: u64) -> u64 {
    let map = std::fs::read_to_string(format!("/proc/self/{kind}_map")).unwrap_or_default();
    for l in map.lines() {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [inside, outside, len] = v[..] {
            if id >= inside && id < inside + len {
                return outside + (id - inside);
            }
        }
    }
    id
}
