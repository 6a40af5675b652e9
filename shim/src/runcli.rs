//! A request run by the berth binary, for the exec-only build and a chosen
//! runtime binary: the request becomes a berth command line with the
//! shim's state root and a JSON log. The binary's answer has only three
//! channels, so they are read back into a typed `Reply` here and nowhere
//! else: the exit status, a pid file for the process it starts, and the
//! log's last error line, whose kind is recognised by runc's wording.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use berth::api::{CheckpointOptions, Created, ErrorKind, Exec, Reply, Request, Response};
use serde::Deserialize;

use crate::berth::{Berth, Io};
use crate::error::{Error, Result};
use crate::reaper::Reaper;

/// Run `req` with `binary`.
pub fn run(
    b: &Berth,
    binary: &Path,
    reaper: Option<&Reaper>,
    req: &Request,
    mut io: Io,
) -> Result<Reply> {
    let pid_file = starts_process(req).then(|| pid_file_path(b));
    let mut argv = global_args(b);
    argv.extend(command_args(req, pid_file.as_deref())?);
    let input = match req {
        Request::Update { resources, .. } => Some(
            serde_json::to_vec(resources)
                .map_err(|e| Error::invalid("update resources", e.to_string()))?,
        ),
        _ => None,
    };
    let in_w = match &input {
        Some(_) => {
            let (r, w) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("pipe"))?;
            io.stdin = Some(r);
            Some(w)
        }
        None => None,
    };
    let child = spawn(binary, &argv, io)?;
    if let (Some(data), Some(w)) = (input, in_w) {
        // A write error (berth exited early) shows in its exit status.
        let _ = File::from(w).write_all(&data);
    }
    let code = wait(child, reaper)?;
    if code != 0 {
        let msg = last_error(&b.log).unwrap_or_else(|| format!("exit status {code}"));
        return Ok(Reply::Err {
            kind: kind_of(&msg),
            message: msg,
        });
    }
    let pid = match &pid_file {
        Some(p) => {
            let pid = read_pid(p);
            let _ = std::fs::remove_file(p);
            pid?
        }
        None => 0,
    };
    Ok(Reply::Ok(match req {
        Request::Create { .. } => Response::Created(Created { pid }),
        Request::Exec { options, .. } if options.detach => Response::Exec(Exec::Detached { pid }),
        Request::Exec { .. } => Response::Exec(Exec::Exited { code }),
        Request::Restore { .. } => Response::Restored { code },
        _ => Response::Done,
    }))
}

pub(crate) fn starts_process(req: &Request) -> bool {
    match req {
        Request::Create { .. } => true,
        Request::Exec { options, .. } => options.detach,
        _ => false,
    }
}

/// A pid file of this shim's own in the state root.
fn pid_file_path(b: &Berth) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    b.root.join(format!(".shim-{}-{n}.pid", std::process::id()))
}

fn read_pid(path: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(path).map_err(Error::io("read pid file", path))?;
    s.trim()
        .parse()
        .map_err(|_| Error::invalid(path.display().to_string(), format!("not a pid: {s:?}")))
}

pub(crate) fn global_args(b: &Berth) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        "--root".into(),
        b.root.clone().into(),
        "--log".into(),
        b.log.clone().into(),
        "--log-format".into(),
        "json".into(),
    ];
    if b.systemd_cgroup {
        v.push("--systemd-cgroup".into());
    }
    v
}

/// `--flag=value` as one argument, so a value that starts with `-` is never
/// read as a flag.
fn joined(flag: &str, v: impl AsRef<std::ffi::OsStr>) -> OsString {
    let mut a = OsString::from(flag);
    a.push("=");
    a.push(v);
    a
}

/// The berth command line of `req`. Options the shim never sets and the
/// command line cannot carry are refused by name, never dropped. Values are
/// joined to their flags and the positionals follow `--`, so no id or path
/// from containerd can be taken for a flag.
pub(crate) fn command_args(req: &Request, pid_file: Option<&Path>) -> Result<Vec<OsString>> {
    let mut a: Vec<OsString> = vec![req.name().into()];
    let flag = |on: bool, f: &str, a: &mut Vec<OsString>| {
        if on {
            a.push(f.into());
        }
    };
    let value = |v: Option<&Path>, f: &str, a: &mut Vec<OsString>| {
        if let Some(v) = v {
            a.push(joined(f, v));
        }
    };
    match req {
        Request::Create { options: o, .. } => {
            value(Some(&o.bundle), "--bundle", &mut a);
            flag(o.no_pivot, "--no-pivot", &mut a);
            flag(o.no_new_keyring, "--no-new-keyring", &mut a);
            value(o.console_socket.as_deref(), "--console-socket", &mut a);
            if o.preserve_fds != 0 {
                a.push(format!("--preserve-fds={}", o.preserve_fds).into());
            }
        }
        Request::Exec { options: o, .. } => {
            let Some(process) = &o.process_file else {
                return Err(Error::invalid(
                    "exec",
                    "the berth binary is given a process file only",
                ));
            };
            flag(o.detach, "--detach", &mut a);
            value(Some(process), "--process", &mut a);
            value(o.console_socket.as_deref(), "--console-socket", &mut a);
        }
        Request::Kill { all, .. } => flag(*all, "--all", &mut a),
        Request::Delete { force, .. } => flag(*force, "--force", &mut a),
        Request::Update { .. } => a.extend(["-r".into(), "-".into()]),
        Request::Checkpoint { options, .. } => a.extend(checkpoint_args(options)),
        Request::Restore { .. } => {
            return Err(Error::invalid("restore", "not supported by the berth shim"))
        }
        Request::Start { .. } | Request::Pause { .. } | Request::Resume { .. } => {}
    }
    value(pid_file, "--pid-file", &mut a);
    a.push("--".into());
    a.push(req.id().into());
    if let Request::Kill { signal, .. } = req {
        a.push(signal.to_string().into());
    }
    Ok(a)
}

fn checkpoint_args(o: &CheckpointOptions) -> Vec<OsString> {
    let c = &o.criu;
    let mut a: Vec<OsString> = vec![joined("--image-path", &c.image_path)];
    if let Some(w) = &c.work_path {
        a.push(joined("--work-path", w));
    }
    let flags = [
        (o.leave_running, "--leave-running"),
        (c.tcp_established, "--tcp-established"),
        (c.ext_unix_sk, "--ext-unix-sk"),
        (c.shell_job, "--shell-job"),
        (c.file_locks, "--file-locks"),
    ];
    a.extend(flags.iter().filter(|(on, _)| *on).map(|(_, f)| f.into()));
    if let Some(m) = &c.manage_cgroups_mode {
        a.push(joined("--manage-cgroups-mode", m));
    }
    a
}

fn spawn(binary: &Path, argv: &[OsString], io: Io) -> Result<std::process::Child> {
    let stdio = |f: Option<OwnedFd>| f.map_or_else(Stdio::null, Stdio::from);
    let mut cmd = Command::new(binary);
    cmd.args(argv)
        .stdin(stdio(io.stdin))
        .stdout(stdio(io.stdout))
        .stderr(stdio(io.stderr));
    let child = cmd.spawn().map_err(Error::io("exec", binary))?;
    // Drop our copies of the stdio now: the container must hold the only
    // writers, or readers never see EOF.
    drop(cmd);
    Ok(child)
}

/// The exit code. Collected through the reaper when there is one (the
/// shim reaps all its children); without one (the `delete` action) std
/// waits as usual.
fn wait(mut c: std::process::Child, reaper: Option<&Reaper>) -> Result<i32> {
    match reaper {
        Some(r) => Ok(r.wait(c.id() as i32)),
        None => Ok(c
            .wait()
            .map_err(Error::io("wait for", "berth"))?
            .code()
            .unwrap_or(128)),
    }
}

/// The message of the last `error` line in the JSON log.
fn last_error(log: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Line {
        level: String,
        msg: String,
    }
    let f = File::open(log).ok()?;
    BufReader::new(f)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| serde_json::from_str::<Line>(&l).ok())
        .filter(|l| l.level == "error")
        .last()
        .map(|l| l.msg)
}

/// The kind of a runtime's error line, by runc's (and berth's) wording.
fn kind_of(msg: &str) -> ErrorKind {
    if msg.contains("does not exist") || msg.contains("not found") {
        ErrorKind::NotFound
    } else if msg.contains("already exists") {
        ErrorKind::AlreadyExists
    } else if msg.contains("not running")
        || msg.contains("not stopped")
        || msg.contains("is stopped")
    {
        ErrorKind::WrongStatus
    } else {
        ErrorKind::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth::api::CriuOptions;

    #[test]
    fn checkpoint_flags() {
        let o = CheckpointOptions {
            criu: CriuOptions {
                image_path: "/img".into(),
                work_path: Some("/w".into()),
                tcp_established: true,
                file_locks: true,
                manage_cgroups_mode: Some("soft".into()),
                ..Default::default()
            },
            leave_running: true,
            ..Default::default()
        };
        let req = Request::Checkpoint {
            id: "c".into(),
            options: o,
        };
        let a = command_args(&req, None).unwrap();
        assert_eq!(
            a,
            [
                "checkpoint",
                "--image-path=/img",
                "--work-path=/w",
                "--leave-running",
                "--tcp-established",
                "--file-locks",
                "--manage-cgroups-mode=soft",
                "--",
                "c"
            ]
        );
    }

    #[test]
    fn kill_and_create_lines() {
        let req = Request::Kill {
            id: "c".into(),
            signal: 9,
            all: true,
        };
        assert_eq!(
            command_args(&req, None).unwrap(),
            ["kill", "--all", "--", "c", "9"]
        );
        let req = Request::Create {
            id: "c".into(),
            options: berth::api::CreateOptions {
                bundle: "/b".into(),
                no_pivot: true,
                ..Default::default()
            },
        };
        assert_eq!(
            command_args(&req, Some(Path::new("/p"))).unwrap(),
            [
                "create",
                "--bundle=/b",
                "--no-pivot",
                "--pid-file=/p",
                "--",
                "c"
            ]
        );
    }

    #[test]
    fn error_kinds_by_wording() {
        assert_eq!(kind_of("container does not exist: c"), ErrorKind::NotFound);
        assert_eq!(
            kind_of("container with given ID already exists: c"),
            ErrorKind::AlreadyExists
        );
        assert_eq!(kind_of("mount: EPERM"), ErrorKind::Failed);
    }
}
