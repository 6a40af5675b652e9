//! The CRI v1 runtime service over containerd's unix socket, with a deadline on every call,
//! and the pod/container configurations this test uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connect to {path}: {source}")]
    Connect {
        path: PathBuf,
        source: tonic::transport::Error,
    },
    #[error("{call}: {status}")]
    Call {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("{call}: no answer within {secs} s")]
    Timeout { call: &'static str, secs: u64 },
}

impl Error {
    /// The gRPC code when the runtime answered with an error.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Call { status, .. } => Some(status.code()),
            _ => None,
        }
    }
}

pub type Client = RuntimeServiceClient<Channel>;

pub async fn connect(sock: &Path) -> Result<Client, Error> {
    let path = sock.to_path_buf();
    // The URI is required by the API but unused: every connection goes to the socket.
    let ch = Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let p = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }))
        .await
        .map_err(|source| Error::Connect {
            path: sock.to_path_buf(),
            source,
        })?;
    Ok(RuntimeServiceClient::new(ch))
}

/// Runs one call with a deadline and names it in the error.
pub async fn call<T>(
    name: &'static str,
    secs: u64,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Error> {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(status)) => Err(Error::Call {
            call: name,
            status: Box::new(status),
        }),
        Err(_) => Err(Error::Timeout { call: name, secs }),
    }
}

/// A pod as the kubelet would describe it: pod network (CNI), per-container pid namespaces,
/// its own cgroup parent so the host check can find what is left.
pub fn pod_config(uid: &str, logs: &Path, cgroup_parent: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "berth-cri-pod".into(),
            uid: uid.into(),
            namespace: "berth-cri".into(),
            attempt: 0,
        }),
        hostname: "berthpod".into(),
        log_directory: logs.display().to_string(),
        labels: HashMap::from([("app".into(), "berth-cri".into())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.into(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Pod as i32,
        pid: cri::NamespaceMode::Container as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

pub fn container_config(name: &str, image: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A field of the verbose `info` JSON that containerd's CRI adds to status replies
/// (`pid`, `runtimeType`, ...).
pub fn info_field(info: &HashMap<String, String>, field: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v.get(field).cloned()
}
