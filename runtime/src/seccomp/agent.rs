//! Handing the notify listener to the seccomp agent at
//! `linux.seccomp.listenerPath`, as the runtime-spec describes: one message
//! on a unix stream socket, the container process state as JSON in the
//! data, the listener fd as SCM_RIGHTS, `fds` naming it "seccompFd".

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use serde_json::{json, Value};

use super::SeccompError;

/// Whether some rule asks for SCMP_ACT_NOTIFY.
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.syscalls()
        .iter()
        .flatten()
        .any(|c| c.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Checks that need no libseccomp, done by `create` before anything exists.
pub fn validate(s: &LinuxSeccomp) -> Result<(), SeccompError> {
    if uses_notify(s) && s.listener_path().is_none() {
        return Err(SeccompError::Invalid {
            field: "linux.seccomp.listenerPath".into(),
            msg: "must be set when a rule uses SCMP_ACT_NOTIFY".into(),
        });
    }
    Ok(())
}

/// Send `listener` and the container process state to the agent. `state`
/// is the container's state JSON; `pid` the init's pid as berth sees it.
pub fn send(
    s: &LinuxSeccomp,
    state: &[u8],
    pid: i32,
    listener: BorrowedFd,
) -> Result<(), SeccompError> {
    let path = s
        .listener_path()
        .as_deref()
        .ok_or_else(|| SeccompError::Invalid {
            field: "linux.seccomp.listenerPath".into(),
            msg: "must be set when a rule uses SCMP_ACT_NOTIFY".into(),
        })?;
    let state: Value = serde_json::from_slice(state).expect("berth renders valid state JSON");
    let mut msg = json!({
        "ociVersion": state["ociVersion"],
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = s.listener_metadata().as_ref().filter(|m| !m.is_empty()) {
        msg["metadata"] = json!(m);
    }
    let bytes = serde_json::to_vec(&msg).expect("JSON values serialize");
    let fail = |what: &str, e: nix::Error| SeccompError::Io {
        ctx: format!("listenerPath {}: {what}", path.display()),
        source: e.into(),
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| fail("socket", e))?;
    let addr = UnixAddr::new(path).map_err(|e| fail("address", e))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| fail("connect", e))?;
    let fds = [listener.as_raw_fd()];
    let mut sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| fail("send", e))?;
    // A stream may take the message in parts; the fd went with the first.
    while sent < bytes.len() {
        sent += nix::sys::socket::send(sock.as_raw_fd(), &bytes[sent..], MsgFlags::MSG_NOSIGNAL)
            .map_err(|e| fail("send", e))?;
    }
    Ok(())
}
