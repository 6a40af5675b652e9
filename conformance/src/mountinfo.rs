//! /proc/<pid>/mountinfo parsing (proc(5)).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub id: u32,
    pub parent: u32,
    pub root: String,
    pub point: String,
    /// Per-mount options: rw/ro, nosuid, nodev, noexec, atime flags.
    pub opts: Vec<String>,
    /// Optional fields: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub tags: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Superblock options (e.g. tmpfs `size=`, `mode=`).
    pub super_opts: Vec<String>,
}

impl Mount {
    pub fn has(&self, opt: &str) -> bool {
        self.opts.iter().any(|o| o == opt)
    }

    pub fn has_super(&self, opt: &str) -> bool {
        self.super_opts.iter().any(|o| o == opt)
    }

    /// The propagation type as the spec names it.
    pub fn propagation(&self) -> &'static str {
        let shared = self.tags.iter().any(|t| t.starts_with("shared:"));
        let slave = self.tags.iter().any(|t| t.starts_with("master:"));
        match (shared, slave) {
            (true, true) => "shared+slave",
            (true, false) => "shared",
            (false, true) => "slave",
            _ if self.tags.iter().any(|t| t == "unbindable") => "unbindable",
            _ => "private",
        }
    }
}

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut f = pre.split(' ');
    let id = f.next()?.parse().ok()?;
    let parent = f.next()?.parse().ok()?;
    let _devno = f.next()?;
    let root = unescape(f.next()?);
    let point = unescape(f.next()?);
    let opts = f.next()?.split(',').map(str::to_string).collect();
    let tags = f.map(str::to_string).collect();
    let mut p = post.split(' ');
    let fstype = p.next()?.to_string();
    let source = unescape(p.next().unwrap_or(""));
    let super_opts = p
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    Some(Mount {
        id,
        parent,
        root,
        point,
        opts,
        tags,
        fstype,
        source,
        super_opts,
    })
}

pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

pub fn read(pid: &str) -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string(format!(
        "/proc/{pid}/mountinfo"
    ))?))
}

/// The mount visible at `point`: the last one listed there (later mounts stack on top).
pub fn at<'a>(mounts: &'a [Mount], point: &str) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.point == point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_propagation() {
        let m = parse_line(
            "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!(m.point, "/mnt x");
        assert!(m.has("noatime"));
        assert_eq!(m.propagation(), "shared+slave");
        assert_eq!(m.fstype, "ext3");
        assert!(m.has_super("errors=continue"));
        let p = parse_line("1 0 0:1 / /p ro - proc proc rw").unwrap();
        assert_eq!(p.propagation(), "private");
    }
}
