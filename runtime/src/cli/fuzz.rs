//! The CLI fuzz target's entry (fuzz/fuzz_targets/cli.rs, which includes
//! this module tree with `#[path]`; the library never sees clap): a
//! command line through clap's definition and into the library's option
//! types, as `main_with` and `dispatch` do, without running a command,
//! opening a log or reading stdin. Panics when an invariant is broken.

use std::ffi::OsString;

use berth::api::{self, CheckpointOptions, CreateOptions, ExecOptions, RestoreOptions};
use clap::error::ErrorKind;

use super::{log_args, summarize, update, Cli, Cmd};

pub fn fuzz_args(args: &[OsString]) {
    let _ = log_args(args);
    let cli = match <Cli as clap::Parser>::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    // clap's value parser lets only these through.
    api::RootlessMode::parse(&cli.rootless).expect("--rootless passed clap");
    let _ = format!("{:?}", cli.cmd);
    match cli.cmd {
        Cmd::Create(a) | Cmd::Run { c: a, .. } => {
            let o = CreateOptions::from(&a);
            assert_eq!(o.bundle, a.bundle);
            assert_eq!(o.preserve_fds, a.preserve_fds);
        }
        Cmd::Exec(a) => {
            let args = a.args.clone();
            let o = ExecOptions::from(*a);
            assert_eq!(o.args, args);
        }
        Cmd::Kill { signal, .. } => {
            if let Ok(n) = api::parse_signal(&signal) {
                assert!((1..=libc::SIGRTMAX()).contains(&n), "{signal:?} is {n}");
            }
        }
        Cmd::Events { interval, .. } => {
            let _ = api::parse_duration("--interval", &interval);
        }
        Cmd::Update(a) if !a.reads_input() => {
            if let Ok(r) = a.to_resources() {
                let text = serde_json::to_string(&r).expect("serialize resources");
                let back: api::LinuxResources =
                    serde_json::from_str(&text).expect("read back resources");
                assert_eq!(back, r, "{text}");
            }
        }
        Cmd::Checkpoint(a) => {
            let o = CheckpointOptions::from(&a);
            assert_eq!(o.criu.image_path, a.criu.image_path);
        }
        Cmd::Restore(a) => {
            let o = RestoreOptions::from(&a);
            assert_eq!(o.bundle, a.bundle);
        }
        _ => {}
    }
}

/// What `usage_error` makes of a refusal: one line for the log, naming what
/// is missing.
fn refused(e: &clap::Error) {
    if !e.use_stderr() || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.render().to_string();
        return;
    }
    let text = e.render().to_string();
    let (line, _) = summarize(&text);
    assert!(!line.is_empty(), "no error line in {text:?}");
    assert!(!line.contains('\n'), "{line:?}");
    if e.kind() == ErrorKind::MissingRequiredArgument {
        assert!(
            !line.ends_with(':'),
            "the missing argument is not named: {line:?}"
        );
    }
}

/// `update`'s size flags (docker's RAMInBytes).
pub fn fuzz_size(v: &str) {
    let Ok(n) = update::parse_size("memory", v) else {
        return;
    };
    assert!(n >= -1, "{v:?} is {n}");
    // A plain number small enough for an f64 is taken exactly.
    if let Ok(exact) = v.parse::<i64>() {
        if (0..1 << 53).contains(&exact) {
            assert_eq!(n, exact, "{v:?}");
        }
    }
}

/// What the berth binary makes of a command line the shim built (the
/// shim's exec mode): the container id and, for kill, the signal number.
pub fn shim_line(args: &[OsString]) -> Result<(String, Option<i32>), String> {
    let cli = <Cli as clap::Parser>::try_parse_from(args).map_err(|e| e.to_string())?;
    let id = match cli.cmd {
        Cmd::Create(a) | Cmd::Run { c: a, .. } => a.id,
        Cmd::Exec(a) => a.id,
        Cmd::Start(a) | Cmd::State(a) | Cmd::Pause(a) | Cmd::Resume(a) => a.id,
        Cmd::Kill { id, signal, .. } => {
            let n = api::parse_signal(&signal).map_err(|e| e.to_string())?;
            return Ok((id, Some(n)));
        }
        Cmd::Delete { id, .. } | Cmd::Ps { id, .. } | Cmd::Events { id, .. } => id,
        Cmd::Update(a) => a.id.clone(),
        Cmd::Checkpoint(a) => a.id,
        Cmd::Restore(a) => a.id,
        Cmd::List { .. } | Cmd::Spec { .. } | Cmd::Features | Cmd::ShimHelper { .. } => {
            String::new()
        }
    };
    Ok((id, None))
}
