//! `linux.netDevices`: host network devices moved (and optionally renamed)
//! into the container's network namespace, with one rtnetlink RTM_NEWLINK
//! request each (IFLA_NET_NS_FD, IFLA_IFNAME).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{recv, send, MsgFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Context, Error, Result};

const FIELD: &str = "linux.netDevices";
// uapi if_link.h attribute numbers.
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;

/// A Linux interface name: what dev_valid_name() accepts.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() < libc::IFNAMSIZ
        && n != "."
        && n != ".."
        && !n
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// (host name, host ifindex, name in the container), checked.
fn devices(spec: &Spec) -> Result<Vec<(String, u32, String)>> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(Vec::new());
    };
    if map.is_empty() {
        return Ok(Vec::new());
    }
    let netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    if !netns {
        return Err(Error::field(
            FIELD,
            "needs a network namespace: devices cannot move into the host's",
        ));
    }
    let mut out: Vec<(String, u32, String)> = Vec::with_capacity(map.len());
    for (host, d) in map {
        let inner = d.name().clone().unwrap_or_else(|| host.clone());
        for n in [host, &inner] {
            if !valid_name(n) {
                return Err(Error::field(
                    FIELD,
                    format!("{n:?} is not a valid interface name"),
                ));
            }
        }
        if out.iter().any(|(_, _, i)| *i == inner) {
            return Err(Error::field(
                FIELD,
                format!("two devices are named {inner:?}"),
            ));
        }
        let Ok(idx) = nix::net::if_::if_nametoindex(host.as_str()) else {
            return Err(Error::field(
                FIELD,
                format!("device {host:?} does not exist on the host"),
            ));
        };
        out.push((host.clone(), idx, inner));
    }
    Ok(out)
}

/// Checked before anything is made.
pub fn validate(spec: &Spec) -> Result<()> {
    devices(spec).map(drop)
}

/// Move the devices into the network namespace of `netns`.
pub fn move_into(spec: &Spec, netns: BorrowedFd<'_>) -> Result<()> {
    let devs = devices(spec)?;
    if devs.is_empty() {
        return Ok(());
    }
    let sock = rtnl_socket().ctx(|| format!("{FIELD}: open an rtnetlink socket"))?;
    for (host, idx, inner) in &devs {
        setlink(&sock, *idx, netns.as_raw_fd(), inner)
            .ctx(|| format!("{FIELD}: move {host:?} into the container as {inner:?}"))?;
    }
    Ok(())
}

fn rtnl_socket() -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
    Ok(socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?)
}

fn push_attr(buf: &mut Vec<u8>, typ: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// RTM_NEWLINK on `index` with IFLA_NET_NS_FD and IFLA_IFNAME, then the ack.
fn setlink(sock: &OwnedFd, index: u32, netns: i32, name: &str) -> std::io::Result<()> {
    const NLMSG_HDR: usize = 16;
    let mut msg = vec![0u8; NLMSG_HDR];
    // struct ifinfomsg: family, pad, type, index, flags, change.
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut msg, IFLA_NET_NS_FD, &(netns as u32).to_ne_bytes());
    let mut ifname = name.as_bytes().to_vec();
    ifname.push(0);
    push_attr(&mut msg, IFLA_IFNAME, &ifname);
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // The kernel is the destination by default for an unbound netlink socket.
    send(sock.as_raw_fd(), &msg, MsgFlags::empty())?;
    let mut ack = [0u8; 1024];
    let n = recv(sock.as_raw_fd(), &mut ack, MsgFlags::empty())?;
    // NLMSG_ERROR carries the errno (0 for the ack) right after the header.
    let typ = u16::from_ne_bytes([ack[4], ack[5]]);
    if n < NLMSG_HDR + 4 || typ != libc::NLMSG_ERROR as u16 {
        return Err(std::io::Error::other("unexpected rtnetlink reply"));
    }
    let errno = i32::from_ne_bytes(ack[16..20].try_into().expect("4 bytes"));
    if errno != 0 {
        return Err(std::io::Error::from_raw_os_error(-errno));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names() {
        for ok in ["eth0", "a", "veth-1.2", "fifteen_chars_x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "sixteen_chars_xx"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
