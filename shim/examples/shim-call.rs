//! Test helper for shim/tests/e2e.sh: sends one Task API call to a shim
//! directly, the way containerd forwards it, where `ctr` 1.6 cannot:
//! - update: `ctr` has no `tasks update`. The OCI LinuxResources go as JSON
//!   in an Any typed `types.containerd.io/opencontainers/runtime-spec/1/LinuxResources`.
//! - checkpoint: `ctr tasks checkpoint` always pauses the task first; this
//!   checkpoints a running one.
//!
//! Usage: shim-call unix://SOCKET update ID RESOURCES_JSON [TYPE_URL]
//!        shim-call unix://SOCKET checkpoint ID IMAGE_PATH

use containerd_shim_protos::api::{CheckpointTaskRequest, UpdateTaskRequest};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::ttrpc::{self, context};
use containerd_shim_protos::{Client, TaskClient};

const TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
const USAGE: &str = "usage: shim-call unix://SOCKET update ID JSON [TYPE_URL] | checkpoint ID PATH";

fn fail(msg: String) -> ! {
    eprintln!("shim-call: {msg}");
    std::process::exit(1);
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let client = TaskClient::new(
        Client::connect(&a[0]).unwrap_or_else(|e| fail(format!("connect {}: {e}", a[0]))),
    );
    let ctx = || context::with_timeout(30_000_000_000);
    let r = match a[1].as_str() {
        "update" => client
            .update(
                ctx(),
                &UpdateTaskRequest {
                    id: a[2].clone(),
                    resources: Some(Any {
                        type_url: a.get(4).map_or(TYPE, String::as_str).to_string(),
                        value: a[3].clone().into_bytes(),
                        ..Default::default()
                    })
                    .into(),
                    ..Default::default()
                },
            )
            .map(drop),
        "checkpoint" => client
            .checkpoint(
                ctx(),
                &CheckpointTaskRequest {
                    id: a[2].clone(),
                    path: a[3].clone(),
                    ..Default::default()
                },
            )
            .map(drop),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    match r {
        Ok(()) => {}
        Err(ttrpc::Error::RpcStatus(s)) => fail(s.message),
        Err(e) => fail(e.to_string()),
    }
}
