//! Task events (create, start, exit, delete, exec...) forwarded to
//! containerd's ttrpc Events service, whose address containerd gives the
//! shim in TTRPC_ADDRESS.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::MessageFull;
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::{topics, Client, EventsClient};

pub fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

pub struct Publisher {
    address: String,
    namespace: String,
    /// Connected on first use, so a shim serving no task costs no thread.
    client: Mutex<Option<EventsClient>>,
}

pub enum Event {
    Create(TaskCreate),
    Start(TaskStart),
    Exit(TaskExit),
    Delete(TaskDelete),
    ExecAdded(TaskExecAdded),
    ExecStarted(TaskExecStarted),
    Oom(TaskOOM),
}

fn pack<M: MessageFull>(m: &M) -> Any {
    Any {
        // containerd's typeurl registry knows bare names.
        type_url: M::descriptor().full_name().to_string(),
        value: m.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    }
}

impl Publisher {
    pub fn new(address: String, namespace: String) -> Publisher {
        Publisher {
            address,
            namespace,
            client: Mutex::new(None),
        }
    }

    pub fn publish(&self, ev: Event) {
        let (topic, any) = match &ev {
            Event::Create(e) => (topics::TASK_CREATE_EVENT_TOPIC, pack(e)),
            Event::Start(e) => (topics::TASK_START_EVENT_TOPIC, pack(e)),
            Event::Exit(e) => (topics::TASK_EXIT_EVENT_TOPIC, pack(e)),
            Event::Delete(e) => (topics::TASK_DELETE_EVENT_TOPIC, pack(e)),
            Event::ExecAdded(e) => (topics::TASK_EXEC_ADDED_EVENT_TOPIC, pack(e)),
            Event::ExecStarted(e) => (topics::TASK_EXEC_STARTED_EVENT_TOPIC, pack(e)),
            Event::Oom(e) => (topics::TASK_OOM_EVENT_TOPIC, pack(e)),
        };
        let req = ForwardRequest {
            envelope: Some(Envelope {
                timestamp: Some(now()).into(),
                namespace: self.namespace.clone(),
                topic: topic.to_string(),
                event: Some(any).into(),
                ..Default::default()
            })
            .into(),
            ..Default::default()
        };
        if let Err(e) = self.forward(&req) {
            eprintln!("berth shim: publish {topic}: {e}");
        }
    }

    fn forward(&self, req: &ForwardRequest) -> Result<(), String> {
        let mut g = self.client.lock().unwrap();
        if g.is_none() {
            if self.address.is_empty() {
                return Err("TTRPC_ADDRESS not set".into());
            }
            let addr = if self.address.contains("://") {
                self.address.clone()
            } else {
                format!("unix://{}", self.address)
            };
            let c = Client::connect(&addr).map_err(|e| format!("connect {addr}: {e}"))?;
            *g = Some(EventsClient::new(c));
        }
        let ctx = containerd_shim_protos::ttrpc::context::with_timeout(5_000_000_000);
        let r = g.as_ref().unwrap().forward(ctx, req);
        if r.is_err() {
            // Reconnect next time (containerd may have restarted).
            *g = None;
        }
        r.map(drop).map_err(|e| e.to_string())
    }
}
