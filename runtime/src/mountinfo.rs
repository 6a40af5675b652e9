//! Minimal /proc/self/mountinfo reader (only the fields berth uses), for
//! the rootfs (pivot, cgroup mounts) and the cgroup layout discovery.

use std::io;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountInfo {
    /// Root of the mount within its filesystem.
    pub root: String,
    pub mountpoint: String,
    pub fstype: String,
    pub super_options: String,
}

pub(crate) fn read() -> io::Result<Vec<MountInfo>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(parse(&text))
}

pub(crate) fn parse(text: &str) -> Vec<MountInfo> {
    text.lines().filter_map(parse_line).collect()
}

// id parent maj:min root mountpoint options [optional...] - fstype source superopts
fn parse_line(line: &str) -> Option<MountInfo> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = l.nth(3)?;
    let mountpoint = l.next()?;
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let super_options = r.nth(1).unwrap_or("");
    Some(MountInfo {
        root: unescape(root),
        mountpoint: unescape(mountpoint),
        fstype: fstype.to_string(),
        super_options: super_options.to_string(),
    })
}

/// The kernel writes space, tab, newline and backslash in paths as \ooo.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_escapes() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime shared:5 - cgroup cgroup rw,cpu\n\
                    50 27 8:1 /a\\040b /mnt/x\\134y rw - ext4 /dev/vda rw\n";
        let v = parse(text);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].mountpoint, "/sys/fs/cgroup/cpu");
        assert_eq!(v[0].fstype, "cgroup");
        assert_eq!(v[0].super_options, "rw,cpu");
        assert_eq!(v[1].root, "/a b");
        assert_eq!(v[1].mountpoint, "/mnt/x\\y");
    }
}
