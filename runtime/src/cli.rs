//! The runc-compatible command line: clap's definition of runc's flags and
//! one small function per command over `berth::api`.

mod commands;
// For the fuzz target, which includes this module tree; unused by the binary.
#[cfg(fuzzing)]
#[allow(dead_code)]
pub mod fuzz;
mod update;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use berth::api::{CreateOptions, CriuOptions};
use berth::logging;

const ABOUT: &str = "berth: an OCI container runtime with runc's command line";

const LONG_ABOUT: &str = "\
berth: an OCI container runtime with runc's command line.

A container is made from a bundle: a directory holding the runtime spec's
config.json and the root filesystem it names. Run one with:

    berth run [-b BUNDLE] CONTAINER-ID

`berth spec` writes a template config.json into the current directory.";

const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    disable_version_flag = true,
    arg_required_else_help = true,
    after_help = "Run 'berth COMMAND --help' for the options of a command."
)]
struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version, help_heading = GLOBAL)]
    version: Option<bool>,
    /// Directory for container state [default: /run/berth, or
    /// $XDG_RUNTIME_DIR/berth for an ordinary user].
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    root: Option<PathBuf>,
    /// Append errors (and debug lines with --debug) to this file.
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    log: Option<PathBuf>,
    /// Format of the --log lines.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text", value_name = "FORMAT", help_heading = GLOBAL)]
    log_format: LogFormat,
    /// Log debug lines too (to stderr without --log).
    #[arg(long, global = true, help_heading = GLOBAL)]
    debug: bool,
    /// Use the systemd cgroup driver: the cgroup is a transient systemd scope
    /// (cgroupsPath "slice:prefix:name").
    #[arg(long = "systemd-cgroup", global = true, help_heading = GLOBAL)]
    systemd_cgroup: bool,
    /// The CRIU binary checkpoint and restore run (default: criu from PATH).
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    criu: Option<PathBuf>,
    /// Tolerate a cgroup tree the caller cannot write (auto: unless root of
    /// the initial user namespace); runc's switch.
    // Top-level only, as in runc: `spec --rootless` is spec's own flag.
    #[arg(long, value_name = "true|false|auto", default_value = "auto",
        value_parser = ["true", "false", "auto"], help_heading = GLOBAL)]
    rootless: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Bundle directory (holding config.json and the rootfs).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    preserve_fds: i32,
    /// Use chroot instead of pivot_root (for a rootfs on a ramdisk).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// A unique name for the container.
    #[arg(value_name = "CONTAINER-ID")]
    id: String,
}

// The id of an existing container. (Not a doc comment: a deferred
// subcommand would show it as its about text instead of the command's.)
#[derive(Args, Debug)]
struct IdArg {
    /// The container's id.
    #[arg(value_name = "CONTAINER-ID")]
    id: String,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// A process.json to run instead of the command line.
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (its master goes to --console-socket when given).
    #[arg(short, long)]
    tty: bool,
    /// Unix socket that receives the pty master of -t.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short, long)]
    detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0, value_name = "N")]
    preserve_fds: i32,
    /// Extra environment: KEY=VALUE (repeatable).
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory of the process.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// User to run as: uid[:gid].
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// An additional group id (repeatable).
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Add a capability, e.g. CAP_NET_ADMIN (repeatable).
    #[arg(short, long, value_name = "CAP")]
    cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// AppArmor profile of the process.
    #[arg(long, value_name = "PROFILE")]
    apparmor: Option<String>,
    /// SELinux label of the process.
    #[arg(long = "process-label", value_name = "LABEL")]
    process_label: Option<String>,
    /// Run in this sub-cgroup of the container's cgroup.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<String>,
    /// Run even if the container is paused.
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// The container's id.
    #[arg(value_name = "CONTAINER-ID")]
    id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    args: Vec<String>,
}

// CRIU options shared by checkpoint and restore (runc's names). (Not a doc
// comment: flattened into a deferred subcommand it would be its about text.)
#[derive(Args, Debug)]
struct CriuArgs {
    /// Directory for the CRIU image files.
    #[arg(long = "image-path", default_value = "checkpoint", value_name = "DIR")]
    image_path: PathBuf,
    /// Directory for CRIU's log and work files (default: the image path).
    #[arg(long = "work-path", value_name = "DIR")]
    work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs (a controlling terminal).
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks.
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// How CRIU handles cgroups: soft, full, strict or ignore.
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    manage_cgroups_mode: Option<String>,
}

impl From<&CriuArgs> for CriuOptions {
    fn from(a: &CriuArgs) -> Self {
        CriuOptions {
            image_path: a.image_path.clone(),
            work_path: a.work_path.clone(),
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            file_locks: a.file_locks,
            manage_cgroups_mode: a.manage_cgroups_mode.clone(),
            // The global --criu, through the Runtime.
            program: None,
        }
    }
}

#[derive(Args, Debug)]
struct CheckpointArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Leave the container running after the checkpoint.
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Dump memory only and leave the container running.
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// A previous pre-dump's image directory, relative to --image-path.
    #[arg(long = "parent-path", value_name = "DIR")]
    parent_path: Option<PathBuf>,
    /// The container's id.
    #[arg(value_name = "CONTAINER-ID")]
    id: String,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Bundle directory (holding config.json and the rootfs).
    #[arg(short, long, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// Do not wait for the restored container.
    #[arg(short, long)]
    detach: bool,
    /// File to write the restored init's pid to.
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Refused: CRIU's command line cannot hand over a restored pty.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    console_socket: Option<PathBuf>,
    /// A unique name for the restored container.
    #[arg(value_name = "CONTAINER-ID")]
    id: String,
}

// Deferred: a parse builds only the chosen subcommand's arguments. Building
// all of them ran the definition code of every command and made its pages
// resident, for one `run` (conformance/bench/README.md, "peak RSS").
#[derive(Subcommand, Debug)]
#[command(defer = true)]
enum Cmd {
    /// Create a container (left waiting for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start(IdArg),
    /// Create and start a container.
    Run {
        #[command(flatten)]
        c: CreateArgs,
        /// Detach from the container.
        #[arg(short, long)]
        detach: bool,
        /// Accepted for runc compatibility: berth never sets itself as subreaper.
        #[arg(long = "no-subreaper")]
        no_subreaper: bool,
    },
    /// Run a process in a running container.
    Exec(Box<ExecArgs>),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container.
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short, long)]
        all: bool,
        /// The container's id.
        #[arg(value_name = "CONTAINER-ID")]
        id: String,
        /// A signal name (KILL, SIGKILL) or number.
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill the container first if it is still running.
        #[arg(short, long)]
        force: bool,
        /// The container's id.
        #[arg(value_name = "CONTAINER-ID")]
        id: String,
    },
    /// List containers.
    List {
        /// Output format.
        #[arg(
            short,
            long,
            value_enum,
            default_value = "table",
            value_name = "FORMAT"
        )]
        format: Format,
        /// Print only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a running container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// List the container's processes: host pids (json) or `ps` rows (table).
    Ps {
        /// Output format.
        #[arg(
            short,
            long,
            value_enum,
            default_value = "table",
            value_name = "FORMAT"
        )]
        format: Format,
        /// The container's id.
        #[arg(value_name = "CONTAINER-ID")]
        id: String,
        /// Arguments for ps (default -ef).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PS-ARGS"
        )]
        ps_args: Vec<String>,
    },
    /// Change a live container's cgroup limits.
    Update(Box<update::UpdateArgs>),
    /// Print resource statistics and OOM events of a container as JSON lines.
    Events {
        /// Print the statistics once and exit.
        #[arg(long)]
        stats: bool,
        /// Time between two statistics events (Go syntax: 5s, 500ms, 1m).
        #[arg(long, default_value = "5s", value_name = "DURATION")]
        interval: String,
        /// The container's id.
        #[arg(value_name = "CONTAINER-ID")]
        id: String,
    },
    /// Checkpoint a running container with CRIU.
    Checkpoint(CheckpointArgs),
    /// Restore a container from a CRIU checkpoint.
    Restore(RestoreArgs),
    /// Write a template config.json.
    Spec {
        /// Directory to write config.json into.
        #[arg(short, long, default_value = ".", value_name = "DIR")]
        bundle: PathBuf,
        /// A template for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Print the implemented features (runtime-spec features.md) as JSON.
    Features,
    /// Serve the containerd shim's requests on an inherited socket (started
    /// by containerd-shim-berth-v2, not by people).
    #[command(name = "shim-helper", hide = true)]
    ShimHelper {
        /// The socket's fd number.
        #[arg(long)]
        fd: i32,
        /// The request protocol version the shim speaks.
        #[arg(long)]
        protocol: u32,
    },
}

impl From<&CreateArgs> for CreateOptions {
    fn from(a: &CreateArgs) -> Self {
        CreateOptions {
            bundle: a.bundle.clone(),
            console_socket: a.console_socket.clone(),
            pid_file: a.pid_file.clone(),
            preserve_fds: a.preserve_fds,
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            ..CreateOptions::default()
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for logging::Format {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Text => logging::Format::Text,
            LogFormat::Json => logging::Format::Json,
        }
    }
}

/// `list -f` and `ps -f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

pub fn main() -> i32 {
    main_with(std::env::args_os())
}

/// The CLI on an explicit argument list (the first one is the program name).
fn main_with<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, &args),
    };
    // The shim's helper sets up no log: each of its workers sets up the
    // log of the container it works for, and a process sets it up once.
    let helper = matches!(cli.cmd, Cmd::ShimHelper { .. });
    if !helper {
        if let Err(e) = logging::init(cli.log.clone(), cli.log_format.into(), cli.debug) {
            eprintln!("berth: {e}");
            return 1;
        }
    }
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            logging::error(&msg);
            eprintln!("berth: {msg}");
            1
        }
    }
}

/// A command line clap refused (or --help and --version, which it renders).
/// The person gets clap's report: the error with its tip (a similar name,
/// the missing argument), the usage and a pointer to --help. The --log
/// file gets the error and tip as one line, since engines report the last
/// error line of that file.
fn usage_error(e: &clap::Error, args: &[std::ffi::OsString]) -> i32 {
    use clap::error::ErrorKind;
    if !e.use_stderr() {
        // --help, --version: to stdout, exit 0.
        let _ = e.print();
        return 0;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // No arguments at all: the usage and the command list, on stdout
        // with status 0 as runc prints them.
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return 0;
    }
    let text = e.render().to_string();
    let (one_line, rest) = summarize(&text);
    let (log, format) = log_args(args);
    // An unusable --log is reported below with the usage error itself.
    let _ = logging::init(log, format, false);
    logging::error(&one_line);
    eprintln!("berth: {one_line}");
    for line in rest {
        eprintln!("{line}");
    }
    1
}

/// clap's report as one line (the error and its tip) and the rest (the
/// usage and the pointer to --help).
fn summarize(text: &str) -> (String, Vec<&str>) {
    let mut summary = Vec::new();
    let mut rest = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("Usage:") || line.starts_with("For more") || !rest.is_empty() {
            rest.push(line);
        } else {
            summary.push(line.trim_start_matches("error: "));
        }
    }
    // "... were not provided:" goes on with its list; a tip is a new clause.
    let mut one_line = String::new();
    for part in summary {
        if !one_line.is_empty() {
            let go_on = one_line.ends_with(':') || part.starts_with('[');
            one_line.push_str(if go_on { " " } else { "; " });
        }
        one_line.push_str(part);
    }
    (one_line, rest)
}

/// --log and --log-format from a command line clap refused, so that the
/// refusal still reaches the log engines read.
fn log_args(args: &[std::ffi::OsString]) -> (Option<PathBuf>, logging::Format) {
    let mut log = None;
    let mut format = logging::Format::Text;
    let mut it = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (a.to_string(), None),
        };
        if key != "--log" && key != "--log-format" {
            continue;
        }
        let Some(value) = inline.or_else(|| it.next().map(|v| v.to_string())) else {
            break;
        };
        if key == "--log" {
            log = Some(PathBuf::from(value));
        } else if value == "json" {
            format = logging::Format::Json;
        }
    }
    (log, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The whole tree, deferred subcommands built.
    fn built() -> clap::Command {
        let mut cmd = Cli::command();
        cmd.build();
        cmd
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_is_built_with_its_arguments() {
        let cmd = built();
        let run = cmd.find_subcommand("run").expect("run");
        let ids: Vec<&str> = run.get_arguments().map(|a| a.get_id().as_str()).collect();
        for want in ["bundle", "detach", "id", "root"] {
            assert!(ids.contains(&want), "run lacks {want}: {ids:?}");
        }
    }

    #[test]
    fn a_deferred_subcommand_parses_with_the_global_options() {
        let cli = Cli::try_parse_from(["berth", "--root", "/r", "kill", "--all", "c1", "KILL"])
            .expect("parse");
        assert_eq!(cli.root, Some(PathBuf::from("/r")));
        match cli.cmd {
            Cmd::Kill { all, id, signal } => {
                assert!(all);
                assert_eq!((id.as_str(), signal.as_str()), ("c1", "KILL"));
            }
            other => panic!("{other:?}"),
        }
        // A global option after the subcommand, as runc allows.
        let cli = Cli::try_parse_from(["berth", "state", "c2", "--root", "/q"]).expect("parse");
        assert_eq!(cli.root, Some(PathBuf::from("/q")));
    }

    #[test]
    fn every_option_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if a.get_help().is_none() && id != "help" {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&built(), "berth", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn log_args_are_found_in_a_refused_command_line() {
        let args: Vec<std::ffi::OsString> = ["berth", "--log", "/l", "--log-format=json", "run"]
            .iter()
            .map(Into::into)
            .collect();
        assert_eq!(
            log_args(&args),
            (Some(PathBuf::from("/l")), logging::Format::Json)
        );
    }
}
