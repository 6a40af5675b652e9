//! Task events (create, start, exit, delete, exec...) forwarded to
//! containerd's ttrpc Events service, whose address containerd gives the
//! shim in TTRPC_ADDRESS.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use containerd_shim_protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM,
    TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::Message;
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

/// Events are queued and forwarded by a thread that lives only while the
/// queue is non-empty. The caller (often the reaper thread) never waits on
/// containerd, which may itself be calling into the shim while it handles an
/// event, and one forwarder at a time keeps the events in order.
pub struct Publisher {
    address: String,
    namespace: String,
    queue: Mutex<Queue>,
    idle: Condvar,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<(&'static str, ForwardRequest)>,
    forwarding: bool,
}

pub enum Event {
    Create(TaskCreate),
    Start(TaskStart),
    Exit(TaskExit),
    Delete(TaskDelete),
    ExecAdded(TaskExecAdded),
    ExecStarted(TaskExecStarted),
    Oom(TaskOOM),
    Paused(TaskPaused),
    Resumed(TaskResumed),
    Checkpointed(TaskCheckpointed),
}

/// containerd's typeurl registry knows bare names. Spelled out rather than
/// read from the message descriptor: building protobuf's reflection tables
/// would cost the shim some 100 kB of heap for a string.
/// Generic rather than `dyn`: protobuf's dyn encoder asks the descriptor
/// for a name on every call, which builds the same tables.
fn pack<M: Message>(type_url: &str, m: &M) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: m.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    }
}

impl Publisher {
    pub fn new(address: String, namespace: String) -> Publisher {
        Publisher {
            address,
            namespace,
            queue: Mutex::default(),
            idle: Condvar::new(),
        }
    }

    pub fn publish(self: &Arc<Self>, ev: Event) {
        let (topic, any) = match &ev {
            Event::Create(e) => (
                topics::TASK_CREATE_EVENT_TOPIC,
                pack("containerd.events.TaskCreate", e),
            ),
            Event::Start(e) => (
                topics::TASK_START_EVENT_TOPIC,
                pack("containerd.events.TaskStart", e),
            ),
            Event::Exit(e) => (
                topics::TASK_EXIT_EVENT_TOPIC,
                pack("containerd.events.TaskExit", e),
            ),
            Event::Delete(e) => (
                topics::TASK_DELETE_EVENT_TOPIC,
                pack("containerd.events.TaskDelete", e),
            ),
            Event::ExecAdded(e) => (
                topics::TASK_EXEC_ADDED_EVENT_TOPIC,
                pack("containerd.events.TaskExecAdded", e),
            ),
            Event::ExecStarted(e) => (
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                pack("containerd.events.TaskExecStarted", e),
            ),
            Event::Oom(e) => (
                topics::TASK_OOM_EVENT_TOPIC,
                pack("containerd.events.TaskOOM", e),
            ),
            Event::Paused(e) => (
                topics::TASK_PAUSED_EVENT_TOPIC,
                pack("containerd.events.TaskPaused", e),
            ),
            Event::Resumed(e) => (
                topics::TASK_RESUMED_EVENT_TOPIC,
                pack("containerd.events.TaskResumed", e),
            ),
            Event::Checkpointed(e) => (
                topics::TASK_CHECKPOINTED_EVENT_TOPIC,
                pack("containerd.events.TaskCheckpointed", e),
            ),
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
        let mut q = self.queue.lock().unwrap();
        q.events.push_back((topic, req));
        if q.forwarding {
            return;
        }
        q.forwarding = true;
        drop(q);
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("events".into())
            .stack_size(crate::reaper::THREAD_STACK)
            .spawn(move || me.drain());
        if spawned.is_err() {
            self.drain();
        }
    }

    fn drain(&self) {
        loop {
            let (topic, req) = {
                let mut q = self.queue.lock().unwrap();
                match q.events.pop_front() {
                    Some(item) => item,
                    None => {
                        q.forwarding = false;
                        self.idle.notify_all();
                        return;
                    }
                }
            };
            if let Err(e) = self.forward(&req) {
                eprintln!("berth shim: publish {topic}: {e}");
            }
        }
    }

    /// Wait until every queued event went out (before the shim exits).
    pub fn flush(&self) {
        let mut q = self.queue.lock().unwrap();
        while q.forwarding {
            q = self.idle.wait(q).unwrap();
        }
    }

    /// One connection per event: events are rare (a handful per task), and
    /// a kept ttrpc client would park two threads for the shim's lifetime.
    fn forward(&self, req: &ForwardRequest) -> Result<(), String> {
        if self.address.is_empty() {
            return Err("TTRPC_ADDRESS not set".into());
        }
        let addr = if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("unix://{}", self.address)
        };
        let c = Client::connect(&addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let ctx = containerd_shim_protos::ttrpc::context::with_timeout(5_000_000_000);
        EventsClient::new(c)
            .forward(ctx, req)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use containerd_shim_protos::events::task::*;
    use containerd_shim_protos::protobuf::MessageFull;

    #[test]
    fn type_urls_are_the_descriptor_names() {
        let names = [
            (
                TaskCreate::descriptor().full_name().to_string(),
                "containerd.events.TaskCreate",
            ),
            (
                TaskStart::descriptor().full_name().to_string(),
                "containerd.events.TaskStart",
            ),
            (
                TaskExit::descriptor().full_name().to_string(),
                "containerd.events.TaskExit",
            ),
            (
                TaskDelete::descriptor().full_name().to_string(),
                "containerd.events.TaskDelete",
            ),
            (
                TaskExecAdded::descriptor().full_name().to_string(),
                "containerd.events.TaskExecAdded",
            ),
            (
                TaskExecStarted::descriptor().full_name().to_string(),
                "containerd.events.TaskExecStarted",
            ),
            (
                TaskOOM::descriptor().full_name().to_string(),
                "containerd.events.TaskOOM",
            ),
        ];
        for (d, ours) in &names {
            assert_eq!(d, ours);
        }
        let src = include_str!("events.rs");
        for (_, ours) in &names {
            assert!(
                src.contains(&format!("pack(\"{ours}\"")),
                "{ours} not used by publish"
            );
        }
    }
}
