//! Linux capability names and bit numbers (linux/capability.h), so sets can be
//! compared with the hex masks in /proc/self/status.

pub const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub fn bit(name: &str) -> Option<u32> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// A mask from names; the first unknown name is the error.
pub fn mask(names: &[String]) -> Result<u64, String> {
    names.iter().try_fold(0u64, |m, n| {
        bit(n).map(|b| m | 1 << b).ok_or_else(|| n.clone())
    })
}

/// Names of the bits set in a mask (unknown high bits as `bit N`), for messages.
pub fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1 << b) != 0)
        .map(|b| {
            NAMES
                .get(b as usize)
                .map_or_else(|| format!("bit {b}"), |n| n.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_and_names_agree() {
        let m = mask(&["CAP_KILL".into(), "CAP_AUDIT_WRITE".into()]).unwrap();
        assert_eq!(m, 1 << 5 | 1 << 29);
        assert_eq!(names(m), vec!["CAP_KILL", "CAP_AUDIT_WRITE"]);
        assert_eq!(mask(&["CAP_TEST".into()]), Err("CAP_TEST".into()));
    }
}
