//! The D-Bus helper, `berth-systemd`: the one process that links zbus. berth
//! and the shim start it when a container uses the systemd driver (see
//! `bus`) and ask over its stdin and stdout (see `wire`), so that the
//! D-Bus client's code, its threads and its memory are paid only by the
//! commands that talk to systemd.
//!
//! It ends on EOF of its stdin, and with its parent: `--parent PID` makes
//! it ask the kernel for SIGKILL when the process that started it dies,
//! so that a berth killed in the middle of a call leaves no helper behind.

use std::io::{BufRead, Write};

use nix::sys::signal::Signal;

use super::dbus::Conn;
use super::wire::{self, BusError, Reply, Request, HELPER_NAME};

/// The helper binary's `main`: serve stdin until EOF. Returns the exit code.
pub fn main() -> i32 {
    // Whatever berth held without close-on-exec (`--preserve-fds`, the
    // caller's leaks) is not the helper's to keep open.
    let _ = crate::sys::proc::close_range(3, u32::MAX, false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match &args[..] {
        [] => {}
        [flag, pid] if flag == "--parent" => {
            let Ok(pid) = pid.parse::<i32>() else {
                eprintln!("{HELPER_NAME}: --parent wants a pid, not {pid:?}");
                return 2;
            };
            let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
            // The parent may have died before the request took effect.
            if nix::unistd::getppid().as_raw() != pid {
                return 1;
            }
        }
        _ => {
            eprintln!(
                "usage: {HELPER_NAME} [--parent PID]\n\
                 berth's D-Bus helper for the systemd cgroup driver, started by berth: \
                 one JSON request a line on stdin, one reply a line on stdout"
            );
            return 2;
        }
    }
    match serve(std::io::stdin().lock(), std::io::stdout().lock()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{HELPER_NAME}: {e}");
            1
        }
    }
}

/// Answer each request line with a reply line, until EOF.
pub(super) fn serve(input: impl BufRead, mut out: impl Write) -> std::io::Result<()> {
    let mut conn = None;
    for line in input.lines() {
        let line = line?;
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => handle(&mut conn, req),
            Err(e) => Err(BusError::Helper {
                path: HELPER_NAME.into(),
                reason: format!("a request it cannot read ({e})"),
            }),
        };
        out.write_all(&wire::encode(&reply))?;
        out.flush()?;
    }
    Ok(())
}

fn handle(conn: &mut Option<Conn>, req: Request) -> Reply {
    let mut connected = |c: Conn| {
        *conn = Some(c);
        Ok(None)
    };
    let c = match req {
        Request::ConnectSystem => return connected(Conn::system()?),
        Request::ConnectUser { uid, address } => return connected(Conn::user(uid, &address)?),
        Request::ConnectAddress { address } => return connected(Conn::at(&address)?),
        _ => conn.as_ref().ok_or_else(|| BusError::Helper {
            path: HELPER_NAME.into(),
            reason: "a call before any connection".into(),
        })?,
    };
    match req {
        Request::ManagerCgroup => c.manager_cgroup().map(Some),
        Request::Version => c.version().map(Some),
        Request::StartTransientUnit { unit, props } => {
            c.start_transient_unit(&unit, &props).map(|()| None)
        }
        Request::StopUnit { unit } => c.stop_unit(&unit).map(|()| None),
        Request::AttachProcessesToUnit { unit, pids } => {
            c.attach_processes_to_unit(&unit, &pids).map(|()| None)
        }
        Request::ResetFailedUnit { unit } => c.reset_failed_unit(&unit).map(|()| None),
        Request::SetUnitProperties { unit, props } => {
            c.set_unit_properties(&unit, &props).map(|()| None)
        }
        Request::ConnectSystem | Request::ConnectUser { .. } | Request::ConnectAddress { .. } => {
            unreachable!("answered above")
        }
    }
}
