//! One function per command: each turns its arguments into a library call
//! on the `Runtime` the global flags describe, and prints what runc prints.

use std::io::Write;
use std::path::Path;

use berth::api::{
    self, CheckpointOptions, Exec, ExecOptions, Listed, RestoreOptions, RootlessMode,
};
use berth::{Error, Result, Runtime};

use super::{CheckpointArgs, Cli, Cmd, CreateArgs, ExecArgs, Format, IdArg, RestoreArgs};
use crate::cli::update::UpdateArgs;

/// The runtime the global flags describe.
fn runtime(cli: &Cli) -> Result<Runtime> {
    let mut rt = match &cli.root {
        Some(r) => Runtime::new(r),
        None => Runtime::with_default_root()?,
    };
    rt.rootless = RootlessMode::parse(&cli.rootless)?;
    rt.criu = cli.criu.clone();
    rt.systemd_cgroup = cli.systemd_cgroup;
    Ok(rt)
}

/// Run the command; its exit status.
pub(super) fn dispatch(cli: Cli) -> Result<i32> {
    berth::logging::debug(|| format!("{:?}", cli.cmd));
    if matches!(
        cli.cmd,
        Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec(_) | Cmd::ShimHelper { .. }
    ) {
        // These make container processes, clones of this one (berth::seal).
        berth::seal::ensure_sealed()?;
    }
    let rt = runtime(&cli)?;
    match cli.cmd {
        Cmd::Create(a) => create(&rt, &a),
        Cmd::Start(IdArg { id }) => done(rt.start(&id)),
        Cmd::Run { c, detach, .. } => rt.run(&c.id, &(&c).into(), detach),
        Cmd::Exec(a) => exec(&rt, *a),
        Cmd::State(IdArg { id }) => state(&rt, &id),
        Cmd::Kill { all, id, signal } => done(rt.kill(&id, api::parse_signal(&signal)?, all)),
        Cmd::Delete { force, id } => done(rt.delete(&id, force)),
        Cmd::List { format, quiet } => list(&rt, format, quiet),
        Cmd::Pause(IdArg { id }) => done(rt.pause(&id)),
        Cmd::Resume(IdArg { id }) => done(rt.resume(&id)),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt, &id, format, &ps_args),
        Cmd::Update(a) => update(&rt, &a),
        Cmd::Events {
            stats,
            interval,
            id,
        } => done(rt.events(&id, api::parse_duration("--interval", &interval)?, stats)),
        Cmd::Checkpoint(a) => done(rt.checkpoint(&a.id, &(&a).into())),
        Cmd::Restore(a) => rt.restore(&a.id, &(&a).into()),
        Cmd::Spec { bundle, rootless } => done(api::write_spec(&bundle, rootless)),
        Cmd::ShimHelper { fd, protocol } => shim_helper(fd, protocol),
        Cmd::Features => {
            let _ = writeln!(std::io::stdout(), "{}", api::features_json()?);
            Ok(0)
        }
    }
}

/// The shim's helper (berth::api::helper). A shim of another berth
/// version would send requests this one misreads: refused before any.
fn shim_helper(fd: i32, protocol: u32) -> Result<i32> {
    if protocol != api::helper::PROTOCOL {
        return Err(Error::Invalid(format!(
            "the shim speaks helper protocol {protocol}, this berth ({}) speaks {}: install the shim and berth from one build",
            env!("CARGO_PKG_VERSION"),
            api::helper::PROTOCOL
        )));
    }
    api::helper::serve_inherited(fd).map(|()| 0)
}

fn done(r: Result<()>) -> Result<i32> {
    r.map(|()| 0)
}

fn create(rt: &Runtime, a: &CreateArgs) -> Result<i32> {
    rt.create(&a.id, &a.into()).map(|_| 0)
}

fn exec(rt: &Runtime, a: ExecArgs) -> Result<i32> {
    let id = a.id.clone();
    match rt.exec(&id, &a.into())? {
        Exec::Detached { .. } => Ok(0),
        Exec::Exited { code } => Ok(code),
    }
}

fn state(rt: &Runtime, id: &str) -> Result<i32> {
    let st = rt.state(id)?;
    let json = serde_json::to_string_pretty(&st).map_err(Error::encode("the state"))?;
    // Ignored like list's: a reader that left (`| grep -q`) is no error,
    // and println! would panic on the broken pipe.
    let _ = writeln!(std::io::stdout(), "{json}");
    Ok(0)
}

fn update(rt: &Runtime, a: &UpdateArgs) -> Result<i32> {
    done(rt.update(&a.id, a.to_resources()?))
}

fn list(rt: &Runtime, format: Format, quiet: bool) -> Result<i32> {
    let rows = rt.list()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for r in &rows {
            let _ = writeln!(out, "{}", r.id);
        }
        return Ok(0);
    }
    match format {
        Format::Json => {
            // The same owner as the table's column (state JSON leaves it empty).
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut v = row_json(r);
                    v["owner"] = owner(&rt.root().join(&r.id)).into();
                    v
                })
                .collect();
            let _ = writeln!(out, "{}", serde_json::to_string(&v).unwrap_or_default());
        }
        Format::Table => {
            let _ = writeln!(
                out,
                "{:<12} {:<8} {:<10} {:<40} {:<30} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &rows {
                let j = row_json(r);
                let _ = writeln!(
                    out,
                    "{:<12} {:<8} {:<10} {:<40} {:<30} {}",
                    r.id,
                    j["pid"].as_i64().unwrap_or_default(),
                    j["status"].as_str().unwrap_or_default(),
                    j["bundle"].as_str().unwrap_or_default(),
                    j["created"].as_str().unwrap_or_default(),
                    owner(&rt.root().join(&r.id))
                );
                if let Err(e) = &r.state {
                    eprintln!("berth: container {}: {e}", r.id);
                }
            }
        }
    }
    Ok(0)
}

/// runc's `list -f json` object; a broken entry has pid 0 and status
/// "unknown".
fn row_json(r: &Listed) -> serde_json::Value {
    match &r.state {
        Ok(st) => serde_json::to_value(st).unwrap_or_default(),
        Err(_) => serde_json::json!({
            "ociVersion": api::OCI_VERSION,
            "id": r.id,
            "pid": 0,
            "status": "unknown",
            "bundle": "",
            "rootfs": "",
            "created": "",
            "owner": "",
        }),
    }
}

/// runc's OWNER column: the user owning the container's state directory.
fn owner(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(dir) else {
        return String::new();
    };
    berth::passwd::name_of(m.uid()).unwrap_or_else(|| format!("#{}", m.uid()))
}

/// runc's `ps`: "json" prints the container's host pids as a JSON array;
/// "table" runs `ps ARGS` (default -ef) and keeps the header and the rows
/// whose PID column is one of them.
fn ps(rt: &Runtime, id: &str, format: Format, args: &[String]) -> Result<i32> {
    let pids = rt.pids(id)?;
    if format == Format::Json {
        let json = serde_json::to_string(&pids).map_err(Error::encode("the pids"))?;
        let _ = writeln!(std::io::stdout(), "{json}");
        return Ok(0);
    }
    let default = ["-ef".to_owned()];
    let args = if args.is_empty() { &default[..] } else { args };
    let out = std::process::Command::new("ps")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| Error::Io {
            ctx: "run ps".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "ps {}: {}",
            args.join(" "),
            out.status
        )));
    }
    let table = filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)?;
    let _ = write!(std::io::stdout(), "{table}");
    Ok(0)
}

fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|f| f == "PID") else {
        return Err(Error::Invalid(
            "couldn't find PID field in ps output".into(),
        ));
    };
    let mut out = String::from(header);
    out.push('\n');
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p: i32| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

impl From<ExecArgs> for ExecOptions {
    fn from(a: ExecArgs) -> Self {
        ExecOptions {
            process_file: a.process,
            args: a.args,
            tty: a.tty,
            console_socket: a.console_socket,
            pid_file: a.pid_file,
            preserve_fds: a.preserve_fds,
            detach: a.detach,
            env: a.env,
            cwd: a.cwd,
            user: a.user,
            additional_gids: a.additional_gids,
            caps: a.cap,
            no_new_privs: a.no_new_privs,
            apparmor: a.apparmor,
            process_label: a.process_label,
            cgroup: a.cgroup,
            ignore_paused: a.ignore_paused,
        }
    }
}

impl From<&CheckpointArgs> for CheckpointOptions {
    fn from(a: &CheckpointArgs) -> Self {
        CheckpointOptions {
            criu: (&a.criu).into(),
            leave_running: a.leave_running,
            pre_dump: a.pre_dump,
            parent_path: a.parent_path.clone(),
        }
    }
}

impl From<&RestoreArgs> for RestoreOptions {
    fn from(a: &RestoreArgs) -> Self {
        RestoreOptions {
            criu: (&a.criu).into(),
            bundle: a.bundle.clone(),
            detach: a.detach,
            pid_file: a.pid_file.clone(),
            console_socket: a.console_socket.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_filter_keeps_header_and_own_rows() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 420 1 x\n";
        assert_eq!(
            filter_ps(text, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter_ps("A B\n1 2\n", &[1]).is_err());
    }
}
