//! One process the shim tracks: a container's init or an exec. Its state is
//! the shim's own record (the reaper reports exits), so State and Wait never
//! need to run berth.

use std::sync::{Condvar, Mutex};

use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::types::task::Status;

use crate::console::Console;
use crate::stdio::StdinCloser;

#[derive(Default)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

#[derive(Default)]
pub struct State {
    pub pid: i32,
    pub status: Status,
    pub exit_status: u32,
    pub exited_at: Option<Timestamp>,
    pub stdin: Option<StdinCloser>,
    pub console: Option<Console>,
}

#[derive(Default)]
pub struct Process {
    pub stdio: Stdio,
    pub state: Mutex<State>,
    cv: Condvar,
}

impl Process {
    pub fn new(stdio: Stdio) -> Process {
        Process {
            stdio,
            state: Mutex::new(State {
                status: Status::CREATED,
                ..Default::default()
            }),
            cv: Condvar::new(),
        }
    }

    /// Record the exit; returns pid and exit time for the TaskExit event.
    pub fn set_exited(&self, code: i32) -> (i32, Timestamp) {
        let mut s = self.state.lock().unwrap();
        s.status = Status::STOPPED;
        s.exit_status = code as u32;
        let at = crate::events::now();
        s.exited_at = Some(at.clone());
        // The process is gone: nothing more to feed it.
        if let Some(c) = s.stdin.take() {
            c.lock().unwrap().take();
        }
        if let Some(c) = s.console.as_mut() {
            c.process_exited();
        }
        self.cv.notify_all();
        (s.pid, at)
    }

    /// Block until the process has exited.
    pub fn wait(&self) -> (u32, Timestamp) {
        let mut s = self.state.lock().unwrap();
        while s.status != Status::STOPPED {
            s = self.cv.wait(s).unwrap();
        }
        (s.exit_status, s.exited_at.clone().unwrap_or_default())
    }

    pub fn close_stdin(&self) {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = s.stdin.take() {
            c.lock().unwrap().take();
        }
        if let Some(c) = s.console.as_mut() {
            c.close_stdin();
        }
    }
}
