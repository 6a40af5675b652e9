//! The two short-lived actions containerd runs the shim binary for:
//! `start` (launch the serving shim, print its address) and `delete`
//! (clean up after a shim that died).

use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim_protos::bootstrap_api::{BootstrapParams, BootstrapResult};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::shim::DeleteResponse;

use ::berth::api::{ErrorKind, Request};

use crate::berth::{self, Berth};
use crate::error::{Error, Result};
use crate::flags::Flags;
use crate::sys;

/// Where runc's shim keeps its sockets too; the name is a hash of the
/// containerd address, namespace and id, so shims of different containerds
/// never collide.
const SOCKET_DIR: &str = "/run/containerd/s";

/// The listening socket is passed to the serving shim as this fd.
pub const LISTENER_FD: i32 = 3;

fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h = (h ^ u64::from(b'/')).wrapping_mul(0x100000001b3);
        }
        for b in p.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
    }
    h
}

/// Annotations that put containers under one shim, first match wins, as
/// with runc's shim: the CRI's sandbox id (one shim per pod) and runc's
/// explicit group.
const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.kubernetes.cri.sandbox-id",
    "io.containerd.runc.v2.group",
];

#[derive(serde::Deserialize)]
struct Annotated {
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

/// The shim group of the container whose bundle is `bundle`: its group
/// annotation, else its own id.
pub fn group(bundle: &Path, id: &str) -> Result<String> {
    let p = bundle.join("config.json");
    let data = std::fs::read(&p).map_err(Error::io("read", &p))?;
    group_of(&data, &p, id)
}

/// The group named by the config.json text `data` (read from `p`).
pub(crate) fn group_of(data: &[u8], p: &Path, id: &str) -> Result<String> {
    let spec: Annotated = serde_json::from_slice(data)
        .map_err(|e| Error::invalid(p.display().to_string(), e.to_string()))?;
    Ok(GROUP_ANNOTATIONS
        .iter()
        .find_map(|k| spec.annotations.get(*k).filter(|v| !v.is_empty()))
        .map_or_else(|| id.to_string(), String::clone))
}

/// The socket of the shim serving `group`.
pub fn socket_path(f: &Flags, group: &str) -> PathBuf {
    let h = fnv1a(&["berth", &f.address, &f.namespace, group]);
    PathBuf::from(SOCKET_DIR).join(format!("berth-{h:016x}"))
}

/// Bind the socket, start the server with it, print `unix://PATH`.
/// containerd 2.3 and later write a `BootstrapParams` protobuf on the start
/// action's stdin and read a `BootstrapResult` protobuf back (they still
/// pass the flags and parse a bare address too). Earlier ones write the
/// runtime options `Any`, or nothing. An options `Any` may happen to decode
/// as `BootstrapParams`, so it counts only when the decoded instance id and
/// namespace are the command line's, the test containerd's shim library
/// applies as well.
pub fn uses_bootstrap_protocol(input: &[u8], f: &Flags) -> bool {
    !input.is_empty()
        && BootstrapParams::parse_from_bytes(input)
            .is_ok_and(|p| p.instance_id == f.id && p.namespace == f.namespace)
}

fn read_stdin() -> Vec<u8> {
    let mut input = Vec::new();
    let stdin = std::io::stdin();
    // A terminal means a person ran us by hand.
    if !stdin.is_terminal() {
        let _ = stdin.lock().read_to_end(&mut input);
    }
    input
}

/// A container of a group whose shim is alive joins that shim.
pub fn start(f: &Flags) -> Result<()> {
    let proto = uses_bootstrap_protocol(&read_stdin(), f);
    let path = socket_path(f, &group(Path::new("."), &f.id)?);
    let address = format!("unix://{}", path.display());
    std::fs::create_dir_all(SOCKET_DIR).map_err(Error::io("create", SOCKET_DIR))?;
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(&path).is_ok() {
                // A live shim already serves this group: hand out its
                // address, and leave it in this bundle too for containerd's
                // reconnect after a restart.
                std::fs::write("address", &address).map_err(Error::io("write", "address"))?;
                return print_address(&address, proto);
            }
            std::fs::remove_file(&path).map_err(Error::io("remove stale socket", &path))?;
            UnixListener::bind(&path).map_err(Error::io("bind", &path))?
        }
        Err(e) => return Err(Error::io("bind", &path)(e)),
    };
    let exe =
        std::env::current_exe().map_err(Error::io("find own executable", "/proc/self/exe"))?;
    let mut cmd = Command::new(&exe);
    cmd.args([
        "-namespace",
        &f.namespace,
        "-id",
        &f.id,
        "-address",
        &f.address,
    ]);
    if !f.publish_binary.is_empty() {
        cmd.args(["-publish-binary", &f.publish_binary]);
    }
    if f.debug {
        cmd.arg("-debug");
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Its own session: containerd's signals to its process group (and the
    // start action's exit) must not reach the server.
    sys::spawn::place_fds(&mut cmd, [(listener.as_raw_fd(), LISTENER_FD)], true);
    let child = cmd.spawn();
    if let Err(e) = child {
        let _ = std::fs::remove_file(&path);
        return Err(Error::io("spawn shim server", exe)(e));
    }
    // containerd reads it back when it restarts and reconnects.
    std::fs::write("address", &address).map_err(Error::io("write", "address"))?;
    print_address(&address, proto)
}

/// The dead server cannot remove its socket: do it for it, through the
/// address it left in the bundle (and only inside our socket dir).
fn remove_socket(bundle: &Path) {
    let Ok(addr) = std::fs::read_to_string(bundle.join("address")) else {
        return;
    };
    let Some(path) = addr.trim().strip_prefix("unix://").map(Path::new) else {
        return;
    };
    if path.parent() == Some(Path::new(SOCKET_DIR)) {
        let _ = std::fs::remove_file(path);
    }
}

/// The start action's reply: a `BootstrapResult` for containerd 2.3+, else
/// the bare address. Version 2 with ttrpc is what a bare address means to
/// every containerd; the server answers the v2 and v3 Task names alike.
fn start_reply(address: &str, proto: bool) -> Result<Vec<u8>> {
    if !proto {
        return Ok(address.as_bytes().to_vec());
    }
    BootstrapResult {
        version: 2,
        address: address.to_string(),
        protocol: "ttrpc".into(),
        ..Default::default()
    }
    .write_to_bytes()
    .map_err(|source| Error::Proto {
        what: "encode BootstrapResult",
        source,
    })
}

fn print_address(address: &str, proto: bool) -> Result<()> {
    let reply = start_reply(address, proto)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&reply)
        .and_then(|_| out.flush())
        .map_err(Error::io("write address to", "stdout"))
}

/// containerd runs this when a shim died: remove the container and its
/// rootfs mounts, and report it killed.
pub fn delete(f: &Flags) -> Result<()> {
    let bundle = if f.bundle.is_empty() {
        std::env::current_dir().map_err(Error::io("find bundle", "."))?
    } else {
        PathBuf::from(&f.bundle)
    };
    let b = match Berth::load(&bundle) {
        Ok(b) => b,
        // Created never got far enough to save its choice: defaults.
        Err(_) => Berth {
            binary: berth::choose_binary(None)?,
            root: Path::new(berth::DEFAULT_ROOT).join(&f.namespace),
            systemd_cgroup: false,
            log: bundle.join("log.json"),
        },
    };
    // containerd runs this action after every task, most often when the
    // shim has deleted the container already: nothing for berth to do then,
    // and no berth to start. A state berth cannot read still goes to berth.
    let gone = matches!(b.runtime().state(&f.id), Err(e) if e.kind() == ErrorKind::NotFound);
    let req = Request::Delete {
        id: f.id.clone(),
        force: true,
    };
    if !gone {
        if let Err(e) = b.request(None, req, berth::Io::null()) {
            if !e.is_not_found() {
                eprintln!("berth shim: {e}");
            }
        }
    }
    crate::mounts::unmount_all(&bundle.join("rootfs"))?;
    remove_socket(&bundle);
    let resp = DeleteResponse {
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(crate::events::now()).into(),
        ..Default::default()
    };
    let bytes = resp.write_to_bytes().map_err(|source| Error::Proto {
        what: "encode DeleteResponse",
        source,
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|_| out.flush())
        .map_err(Error::io("write delete response to", "stdout"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(name: &str, config: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("berth-shim-group-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.json"), config).unwrap();
        d
    }

    #[test]
    fn group_by_annotation_else_id() {
        let d = bundle(
            "sandbox",
            r#"{"ociVersion":"1.0.2","annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        );
        assert_eq!(group(&d, "c1").unwrap(), "pod1");
        let e = bundle("plain", r#"{"ociVersion":"1.0.2","annotations":{"a":"b"}}"#);
        assert_eq!(group(&e, "c2").unwrap(), "c2");
        let g = bundle(
            "runc-group",
            r#"{"annotations":{"io.containerd.runc.v2.group":"g","io.kubernetes.cri.sandbox-id":""}}"#,
        );
        assert_eq!(group(&g, "c3").unwrap(), "g");
        for p in [d, e, g] {
            std::fs::remove_dir_all(p).unwrap();
        }
    }

    fn flags(id: &str, ns: &str) -> Flags {
        Flags {
            id: id.into(),
            namespace: ns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn bootstrap_protocol_detected_by_id_and_namespace() {
        let p = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "k8s.io".into(),
            containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            ..Default::default()
        };
        let bytes = p.write_to_bytes().unwrap();
        assert!(uses_bootstrap_protocol(&bytes, &flags("c1", "k8s.io")));
        assert!(!uses_bootstrap_protocol(&bytes, &flags("c2", "k8s.io")));
        assert!(!uses_bootstrap_protocol(&bytes, &flags("c1", "default")));
        assert!(!uses_bootstrap_protocol(b"", &flags("", "")));
        // A runtime options Any, as containerd 1.6 to 2.2 send it.
        let any = containerd_shim_protos::protobuf::well_known_types::any::Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![0x10, 1],
            ..Default::default()
        };
        let legacy = any.write_to_bytes().unwrap();
        assert!(!uses_bootstrap_protocol(&legacy, &flags("c1", "k8s.io")));
    }

    #[test]
    fn start_reply_forms() {
        let a = "unix:///run/containerd/s/berth-0";
        assert_eq!(start_reply(a, false).unwrap(), a.as_bytes());
        let r = BootstrapResult::parse_from_bytes(&start_reply(a, true).unwrap()).unwrap();
        assert_eq!(
            (r.version, r.address.as_str(), r.protocol.as_str()),
            (2, a, "ttrpc")
        );
        // containerd 2.3 tries the protobuf first: a bare address must not
        // decode, or the fallback to the string would never happen.
        assert!(BootstrapResult::parse_from_bytes(a.as_bytes()).is_err());
    }

    #[test]
    fn group_of_bad_bundle_is_named() {
        let d = bundle("bad", "{not json");
        let err = group(&d, "c").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("invalid {}/config.json:", d.display())),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
        let err = group(&d, "c").unwrap_err().to_string();
        assert!(err.starts_with("read "), "{err}");
    }
}
