//! The API as data: a [`Request`] names one operation with its arguments,
//! [`Runtime::handle`] runs it, and a [`Reply`] carries the result or the
//! error's kind and message. The shim sends these over the socket to its
//! forked helper, so a new Task API call needs a request variant here, not
//! a new command line.

use serde::{Deserialize, Serialize};

use super::{
    CheckpointOptions, CreateOptions, Created, ErrorKind, Exec, ExecOptions, LinuxResources,
    RestoreOptions, Runtime,
};
use crate::error::Result;

/// One operation of a [`Runtime`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Create {
        id: String,
        options: CreateOptions,
    },
    Start {
        id: String,
    },
    Kill {
        id: String,
        signal: i32,
        all: bool,
    },
    Delete {
        id: String,
        force: bool,
    },
    Exec {
        id: String,
        options: Box<ExecOptions>,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Update {
        id: String,
        resources: Box<LinuxResources>,
    },
    Checkpoint {
        id: String,
        options: CheckpointOptions,
    },
    Restore {
        id: String,
        options: RestoreOptions,
    },
}

/// What a [`Request`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Done,
    Created(Created),
    Exec(Exec),
    /// The restored container's exit status (0 when detached).
    Restored {
        code: i32,
    },
}

/// A request's outcome, as it crosses a process boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Ok(Response),
    Err { kind: ErrorKind, message: String },
}

impl Request {
    /// The container the request is about.
    pub fn id(&self) -> &str {
        match self {
            Request::Create { id, .. }
            | Request::Start { id }
            | Request::Kill { id, .. }
            | Request::Delete { id, .. }
            | Request::Exec { id, .. }
            | Request::Pause { id }
            | Request::Resume { id }
            | Request::Update { id, .. }
            | Request::Checkpoint { id, .. }
            | Request::Restore { id, .. } => id,
        }
    }

    /// The operation's name, as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Create { .. } => "create",
            Request::Start { .. } => "start",
            Request::Kill { .. } => "kill",
            Request::Delete { .. } => "delete",
            Request::Exec { .. } => "exec",
            Request::Pause { .. } => "pause",
            Request::Resume { .. } => "resume",
            Request::Update { .. } => "update",
            Request::Checkpoint { .. } => "checkpoint",
            Request::Restore { .. } => "restore",
        }
    }
}

impl Runtime {
    /// Run one request.
    pub fn handle(&self, req: Request) -> Result<Response> {
        Ok(match req {
            Request::Create { id, options } => Response::Created(self.create(&id, &options)?),
            Request::Start { id } => self.start(&id).map(|_| Response::Done)?,
            Request::Kill { id, signal, all } => {
                self.kill(&id, signal, all).map(|_| Response::Done)?
            }
            Request::Delete { id, force } => self.delete(&id, force).map(|_| Response::Done)?,
            Request::Exec { id, options } => Response::Exec(self.exec(&id, &options)?),
            Request::Pause { id } => self.pause(&id).map(|_| Response::Done)?,
            Request::Resume { id } => self.resume(&id).map(|_| Response::Done)?,
            Request::Update { id, resources } => {
                self.update(&id, *resources).map(|_| Response::Done)?
            }
            Request::Checkpoint { id, options } => {
                self.checkpoint(&id, &options).map(|_| Response::Done)?
            }
            Request::Restore { id, options } => Response::Restored {
                code: self.restore(&id, &options)?,
            },
        })
    }

    /// Run one request and turn its outcome into a [`Reply`].
    pub fn reply(&self, req: Request) -> Reply {
        match self.handle(req) {
            Ok(r) => Reply::Ok(r),
            Err(e) => Reply::Err {
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }
}
