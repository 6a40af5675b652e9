//! The ttrpc Task service containerd drives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use containerd_shim_protos::events::task::{
    TaskCheckpointed, TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO,
    TaskOOM, TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::shim::shim::*;
use containerd_shim_protos::ttrpc::{self, TtrpcContext};
use containerd_shim_protos::types::task::{ProcessInfo, Status};
use containerd_shim_protos::Task;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::events::{Event, Publisher};
use crate::process::{self, Process};
use crate::reaper::Reaper;

/// Set once the shim should exit (Shutdown with no container left).
pub type ExitFlag = Arc<(Mutex<bool>, std::sync::Condvar)>;

pub struct Service {
    pub namespace: String,
    pub reaper: Arc<Reaper>,
    pub publisher: Arc<Publisher>,
    pub containers: Mutex<HashMap<String, Container>>,
    pub exit: ExitFlag,
}

type R<T> = ttrpc::Result<T>;

impl Service {
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Container) -> Result<T>) -> Result<T> {
        let mut g = self.containers.lock().unwrap();
        let c = g
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        f(c)
    }

    fn process(&self, id: &str, exec_id: &str) -> Result<Arc<Process>> {
        self.with(id, |c| c.process(exec_id).cloned())
    }

    /// Report the process's exit to containerd once the reaper sees it.
    fn watch(&self, id: &str, exec_id: &str, p: &Arc<Process>) {
        let pid = p.state.lock().unwrap().pid;
        let (p, publisher) = (Arc::clone(p), Arc::clone(&self.publisher));
        let (cid, eid) = (
            id.to_string(),
            if exec_id.is_empty() { id } else { exec_id }.to_string(),
        );
        self.reaper.watch(pid, move |code| {
            let (pid, at) = p.set_exited(code);
            publisher.publish(Event::Exit(TaskExit {
                container_id: cid,
                id: eid,
                pid: pid as u32,
                exit_status: code as u32,
                exited_at: Some(at).into(),
                ..Default::default()
            }));
        });
    }

    fn do_create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse> {
        if self.containers.lock().unwrap().contains_key(&req.id) {
            return Err(Error::Exists(format!("container {}", req.id)));
        }
        let mut c = Container::create(&req, &self.namespace, &self.reaper)?;
        let pid = c.init.state.lock().unwrap().pid;
        self.watch(&req.id, "", &c.init);
        let (publisher, id) = (Arc::clone(&self.publisher), req.id.clone());
        let on_oom = move || {
            publisher.publish(Event::Oom(TaskOOM {
                container_id: id.clone(),
                ..Default::default()
            }))
        };
        // Best effort, as with runc's shim: a container without a memory
        // cgroup we can watch still runs.
        match crate::oom::watch(&self.reaper, &c.berth.runtime(), &req.id, on_oom) {
            Ok(token) => c.oom = token,
            Err(e) => eprintln!("berth shim: OOM events of {}: {e}", req.id),
        }
        self.containers.lock().unwrap().insert(req.id.clone(), c);
        self.publisher.publish(Event::Create(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            pid: pid as u32,
            ..Default::default()
        }));
        Ok(CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn do_start(&self, req: StartRequest) -> Result<StartResponse> {
        // berth start/exec runs outside the lock: a slow start must not stall
        // State or Wait of other processes.
        let (h, p) = self.with(&req.id, |c| {
            Ok((c.handle(), c.process(&req.exec_id)?.clone()))
        })?;
        let pid = h.start(&self.reaper, &req.exec_id, &p)?;
        if !req.exec_id.is_empty() {
            self.watch(&req.id, &req.exec_id, &p);
            self.publisher.publish(Event::ExecStarted(TaskExecStarted {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                pid: pid as u32,
                ..Default::default()
            }));
        } else {
            self.publisher.publish(Event::Start(TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            }));
        }
        Ok(StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn do_delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let mut g = self.containers.lock().unwrap();
        let c = g
            .get_mut(&req.id)
            .ok_or_else(|| Error::NotFound(req.id.clone()))?;
        let p = c.process(&req.exec_id)?.clone();
        let (pid, status, exit_status, exited_at) = {
            let s = p.state.lock().unwrap();
            (s.pid, s.status, s.exit_status, s.exited_at.clone())
        };
        if status == Status::RUNNING {
            return Err(Error::State(format!(
                "process {} of {} is running; kill it first",
                crate::container::name(&req.exec_id),
                req.id
            )));
        }
        if req.exec_id.is_empty() {
            if let Some(t) = c.oom.take() {
                self.reaper.unwatch_fd(t);
            }
            c.cleanup(Some(&self.reaper))?;
            g.remove(&req.id);
        } else {
            c.execs.remove(&req.exec_id);
        }
        drop(g);
        let exited_at = exited_at.unwrap_or_else(crate::events::now);
        if req.exec_id.is_empty() {
            self.publisher.publish(Event::Delete(TaskDelete {
                container_id: req.id.clone(),
                pid: pid as u32,
                exit_status,
                exited_at: Some(exited_at.clone()).into(),
                id: req.id.clone(),
                ..Default::default()
            }));
        }
        Ok(DeleteResponse {
            pid: pid as u32,
            exit_status,
            exited_at: Some(exited_at).into(),
            ..Default::default()
        })
    }

    fn do_exec(&self, req: ExecProcessRequest) -> Result<()> {
        let spec = req
            .spec
            .as_ref()
            .ok_or_else(|| Error::invalid("exec spec", "missing"))?;
        self.with(&req.id, |c| {
            if c.execs.contains_key(&req.exec_id) {
                return Err(Error::Exists(format!("exec {} in {}", req.exec_id, req.id)));
            }
            if c.init.state.lock().unwrap().status != Status::RUNNING {
                return Err(Error::State(format!("container {} is not running", req.id)));
            }
            // The spec is the OCI Process as JSON; berth reads it at start.
            let path = c.bundle.join(format!("exec-{}.json", req.exec_id));
            std::fs::write(&path, &spec.value).map_err(Error::io("write exec spec", &path))?;
            let p = Process::new(process::Stdio {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            });
            c.execs.insert(req.exec_id.clone(), Arc::new(p));
            Ok(())
        })?;
        self.publisher.publish(Event::ExecAdded(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        }));
        Ok(())
    }

    /// Pause or resume the init's container and record the new status.
    fn freeze(&self, id: &str, pause: bool) -> Result<()> {
        let (h, p) = self.with(id, |c| Ok((c.handle(), c.init.clone())))?;
        let (from, to) = if pause {
            (Status::RUNNING, Status::PAUSED)
        } else {
            (Status::PAUSED, Status::RUNNING)
        };
        let status = p.state.lock().unwrap().status;
        if status != from {
            return Err(Error::State(format!(
                "container {id} is {status:?}, not {from:?}"
            )));
        }
        if pause {
            h.pause(&self.reaper)?;
        } else {
            h.resume(&self.reaper)?;
        }
        let mut s = p.state.lock().unwrap();
        // The reaper may have seen the init exit meanwhile.
        if s.status == from {
            s.status = to;
        }
        drop(s);
        let container_id = id.to_string();
        self.publisher.publish(if pause {
            Event::Paused(TaskPaused {
                container_id,
                ..Default::default()
            })
        } else {
            Event::Resumed(TaskResumed {
                container_id,
                ..Default::default()
            })
        });
        Ok(())
    }

    fn do_pids(&self, id: &str) -> Result<PidsResponse> {
        let h = self.with(id, |c| Ok(c.handle()))?;
        let pids = h.berth.runtime().pids(id).map_err(Error::berth("ps", id))?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }
}

impl Task for Service {
    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> R<CreateTaskResponse> {
        Ok(self.do_create(req)?)
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> R<StartResponse> {
        Ok(self.do_start(req)?)
    }

    fn state(&self, _: &TtrpcContext, req: StateRequest) -> R<StateResponse> {
        let (p, bundle) = self.with(&req.id, |c| {
            Ok((c.process(&req.exec_id)?.clone(), c.bundle.clone()))
        })?;
        let s = p.state.lock().unwrap();
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: bundle.display().to_string(),
            pid: s.pid as u32,
            status: s.status.into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: s.exit_status,
            exited_at: s.exited_at.clone().into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> R<WaitResponse> {
        let p = self.process(&req.id, &req.exec_id)?;
        let (exit_status, at) = p.wait();
        Ok(WaitResponse {
            exit_status,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> R<Empty> {
        let (h, p) = self.with(&req.id, |c| {
            Ok((c.handle(), c.process(&req.exec_id)?.clone()))
        })?;
        h.kill(&self.reaper, &req.exec_id, &p, req.signal, req.all)?;
        Ok(Empty::new())
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> R<DeleteResponse> {
        Ok(self.do_delete(req)?)
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> R<PidsResponse> {
        Ok(self.do_pids(&req.id)?)
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> R<Empty> {
        self.do_exec(req)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> R<Empty> {
        let p = self.process(&req.id, &req.exec_id)?;
        let s = p.state.lock().unwrap();
        match &s.console {
            Some(c) => c.resize(req.width, req.height)?,
            None => return Err(Error::State(format!("process {} has no terminal", req.id)).into()),
        }
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> R<Empty> {
        if req.stdin {
            self.process(&req.id, &req.exec_id)?.close_stdin();
        }
        Ok(Empty::new())
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> R<ConnectResponse> {
        let task_pid = self
            .process(&req.id, "")
            .map(|p| p.state.lock().unwrap().pid as u32)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> R<Empty> {
        self.freeze(&req.id, true)?;
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> R<Empty> {
        self.freeze(&req.id, false)?;
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> R<Empty> {
        let h = self.with(&req.id, |c| Ok(c.handle()))?;
        h.update(&self.reaper, req.resources.as_ref())?;
        Ok(Empty::new())
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> R<StatsResponse> {
        let h = self.with(&req.id, |c| Ok(c.handle()))?;
        Ok(StatsResponse {
            stats: Some(h.stats()?).into(),
            ..Default::default()
        })
    }

    fn checkpoint(&self, _: &TtrpcContext, req: CheckpointTaskRequest) -> R<Empty> {
        let h = self.with(&req.id, |c| Ok(c.handle()))?;
        h.checkpoint(&self.reaper, &req.path, req.options.as_ref())?;
        self.publisher
            .publish(Event::Checkpointed(TaskCheckpointed {
                container_id: req.id.clone(),
                checkpoint: req.path.clone(),
                ..Default::default()
            }));
        Ok(Empty::new())
    }

    fn shutdown(&self, _: &TtrpcContext, _req: ShutdownRequest) -> R<Empty> {
        // containerd asks after every task delete; stay while tasks remain.
        if self.containers.lock().unwrap().is_empty() {
            let (m, cv) = &*self.exit;
            *m.lock().unwrap() = true;
            cv.notify_all();
        }
        Ok(Empty::new())
    }
}
