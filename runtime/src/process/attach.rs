//! A helper that moves an exec'd process into a user's systemd unit.
//!
//! An ordinary user's `exec` from outside its own cgroup tree cannot write
//! the unit's cgroup.procs (the common ancestor is not the user's), so the
//! user's systemd instance has to move the process (see
//! [`Cgroup::add_pid`]). That takes the systemd driver's D-Bus helper
//! process; but by the time the process exists, berth has joined the
//! container's pid namespace for its children, and a process started then
//! would be born inside the container's. So a helper is forked before that,
//! in berth's own namespaces; it waits for the pid, asks systemd, and
//! answers with the error if any.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};

pub(crate) struct Attacher {
    pid: i32,
    chan: Option<UnixStream>,
}

impl Attacher {
    pub(crate) fn spawn(cgroup: &Cgroup) -> Result<Attacher> {
        let (ours, theirs) = UnixStream::pair().ctx(|| "socketpair for the attach helper")?;
        let pid = crate::sys::clone::fork().ctx(|| "fork the attach helper")?;
        if pid == 0 {
            drop(ours);
            let code = i32::from(serve(cgroup, theirs).is_err());
            // Leave the forked copy without running the parent's destructors.
            crate::sys::proc::exit_now(code)
        }
        Ok(Attacher {
            pid,
            chan: Some(ours),
        })
    }

    /// Move `pid` (as this process's pid namespace numbers it) into the unit.
    pub(crate) fn attach(&mut self, pid: i32) -> Result<()> {
        let chan = self
            .chan
            .as_mut()
            .ok_or_else(|| Error::Exec("attach helper already used".into()))?;
        chan.write_all(&pid.to_le_bytes())
            .ctx(|| "send the pid to the attach helper")?;
        let mut reply = String::new();
        chan.read_to_string(&mut reply)
            .ctx(|| "read the attach helper's answer")?;
        match reply.strip_prefix("ok") {
            Some("") => Ok(()),
            _ if reply.is_empty() => Err(Error::Exec("the attach helper died".into())),
            _ => Err(Error::Exec(reply)),
        }
    }
}

impl Drop for Attacher {
    fn drop(&mut self) {
        // EOF ends the helper if it is still waiting.
        self.chan.take();
        let _ = waitpid(Pid::from_raw(self.pid), None);
    }
}

fn serve(cgroup: &Cgroup, mut chan: UnixStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4];
    chan.read_exact(&mut buf)?;
    let reply = match cgroup.add_pid(i32::from_le_bytes(buf)) {
        Ok(()) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    chan.write_all(reply.as_bytes())
}
