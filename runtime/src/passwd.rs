//! User names from `/etc/passwd`, read directly as runc does (its `user`
//! package), not through glibc's NSS: a statically linked berth (build.rs)
//! would have to load NSS modules at run time.

use std::path::Path;

/// The name of `uid` in the host's `/etc/passwd`.
pub fn name_of(uid: u32) -> Option<String> {
    name_in(Path::new("/etc/passwd"), uid)
}

fn name_in(file: &Path, uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    find(&text, uid)
}

/// The first entry of `text` (passwd(5) lines) with this uid.
fn find(text: &str, uid: u32) -> Option<String> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.trim().parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_entry_with_the_uid_wins() {
        let t = "# comment\nroot:x:0:0:root:/root:/bin/sh\nbroken\n:x:7:7::/:/bin/sh\n\
                 alice:x:1000:1000::/home/alice:/bin/sh\nalias:x:1000:1000::/:/bin/sh\n";
        assert_eq!(find(t, 0).as_deref(), Some("root"));
        assert_eq!(find(t, 1000).as_deref(), Some("alice"));
        assert_eq!(find(t, 7), None);
        assert_eq!(find(t, 5), None);
    }

    #[test]
    fn root_is_found_on_this_host() {
        assert_eq!(name_of(0).as_deref(), Some("root"));
        assert_eq!(name_in(Path::new("/nonexistent/passwd"), 0), None);
    }
}
