//! The runc-compatible command line. It only parses and dispatches; the
//! work is in `container`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::container::{self, CreateOpts};
use crate::error::{Error, Result};
use crate::logging;

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
    log_format: logging::Format,
    /// Log debug lines too (to stderr without --log).
    #[arg(long, global = true, help_heading = GLOBAL)]
    debug: bool,
    /// Use the systemd cgroup driver: not implemented yet, so create, run
    /// and restore refuse it.
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

/// The id of an existing container.
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

/// CRIU options shared by checkpoint and restore (runc's names).
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

impl From<CriuArgs> for crate::checkpoint::CriuOpts {
    fn from(a: CriuArgs) -> Self {
        crate::checkpoint::CriuOpts {
            image_path: a.image_path,
            work_path: a.work_path,
            tcp_established: a.tcp_established,
            ext_unix_sk: a.ext_unix_sk,
            shell_job: a.shell_job,
            file_locks: a.file_locks,
            manage_cgroups_mode: a.manage_cgroups_mode,
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

#[derive(Subcommand, Debug)]
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
        /// Output format: table or json.
        #[arg(short, long, default_value = "table", value_name = "FORMAT")]
        format: String,
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
        /// Output format: table or json.
        #[arg(short, long, default_value = "table", value_name = "FORMAT")]
        format: String,
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
    Update(Box<UpdateArgs>),
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
}

/// runc's `update` flags; sizes take k/m/g suffixes. runc's Intel RDT flags
/// (--l3-cache-schema, --mem-bw-schema) are not offered: berth has no Intel RDT.
#[derive(Args, Debug)]
struct UpdateArgs {
    /// A LinuxResources JSON file, or "-" for stdin; other flags are ignored.
    #[arg(short, long, value_name = "FILE")]
    resources: Option<String>,
    /// Memory limit (bytes, k/m/g suffixes; -1 for unlimited).
    #[arg(long, allow_hyphen_values = true, value_name = "SIZE")]
    memory: Option<String>,
    /// Memory soft limit.
    #[arg(
        long = "memory-reservation",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    memory_reservation: Option<String>,
    /// Memory plus swap; -1 for unlimited.
    #[arg(long = "memory-swap", allow_hyphen_values = true, value_name = "SIZE")]
    memory_swap: Option<String>,
    /// Kernel memory limit (cgroup v1 only; deprecated by the kernel).
    #[arg(
        long = "kernel-memory",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (cgroup v1 only).
    #[arg(
        long = "kernel-memory-tcp",
        allow_hyphen_values = true,
        value_name = "SIZE"
    )]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares", value_name = "N")]
    cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period; -1 for none.
    #[arg(long = "cpu-quota", allow_hyphen_values = true, value_name = "USEC")]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period", value_name = "USEC")]
    cpu_period: Option<u64>,
    /// Realtime runtime in microseconds per period (cgroup v1 only).
    #[arg(
        long = "cpu-rt-runtime",
        allow_hyphen_values = true,
        value_name = "USEC"
    )]
    cpu_rt_runtime: Option<i64>,
    /// Realtime period in microseconds (cgroup v1 only).
    #[arg(long = "cpu-rt-period", value_name = "USEC")]
    cpu_rt_period: Option<u64>,
    /// CPUs allowed, e.g. 0-3,6.
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    cpuset_cpus: Option<String>,
    /// Memory nodes allowed, e.g. 0-1.
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    cpuset_mems: Option<String>,
    /// Maximum number of tasks; -1 or 0 for unlimited.
    #[arg(long = "pids-limit", allow_hyphen_values = true, value_name = "N")]
    pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000 (needs a disk scheduler with weights).
    #[arg(long = "blkio-weight", value_name = "N")]
    blkio_weight: Option<u16>,
    /// The container's id.
    #[arg(value_name = "CONTAINER-ID")]
    id: String,
}

impl From<CreateArgs> for (String, CreateOpts) {
    fn from(a: CreateArgs) -> Self {
        (
            a.id,
            CreateOpts {
                bundle: a.bundle,
                console_socket: a.console_socket,
                pid_file: a.pid_file,
                preserve_fds: a.preserve_fds,
                no_pivot: a.no_pivot,
                no_new_keyring: a.no_new_keyring,
                ..CreateOpts::default()
            },
        )
    }
}

pub fn main() -> i32 {
    main_with(std::env::args_os())
}

/// The CLI on an explicit argument list (the first one is the program
/// name): the shim runs berth commands this way in a forked worker, without
/// an exec.
pub fn main_with<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, &args),
    };
    if let Err(e) = logging::init(cli.log.clone(), cli.log_format, cli.debug) {
        eprintln!("berth: {e}");
        return 1;
    }
    match dispatch(cli) {
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

fn need_cgroupfs(systemd: bool) -> Result<()> {
    if systemd {
        return Err(Error::Unsupported(
            "--systemd-cgroup (the systemd cgroup driver)".into(),
        ));
    }
    Ok(())
}

fn dispatch(cli: Cli) -> Result<i32> {
    let root = match cli.root {
        Some(r) => r,
        None => crate::rootless::default_root()?,
    };
    let rootless = crate::rootless::Mode::parse(&cli.rootless)?;
    logging::debug(|| format!("{:?}", cli.cmd));
    match cli.cmd {
        Cmd::Create(a) => {
            need_cgroupfs(cli.systemd_cgroup)?;
            let (id, mut o): (String, CreateOpts) = a.into();
            o.rootless = rootless;
            container::create(&root, &id, &o)?;
        }
        Cmd::Start(IdArg { id }) => {
            let dir = crate::state::Dir::open(&root, &id)?;
            let st = dir.load()?;
            container::start(&dir, &st)?;
        }
        Cmd::Run { c, detach, .. } => {
            need_cgroupfs(cli.systemd_cgroup)?;
            let (id, mut o): (String, CreateOpts) = c.into();
            o.rootless = rootless;
            return container::run(&root, &id, &o, detach);
        }
        Cmd::Exec(a) => {
            let a = *a;
            let o = container::ExecOpts {
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
            };
            return container::exec(&root, &a.id, &o);
        }
        Cmd::State(IdArg { id }) => println!("{}", container::state_json(&root, &id)?),
        Cmd::Kill { all, id, signal } => {
            let sig = crate::signal::parse(&signal)?;
            container::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&root, &id, force)?,
        Cmd::List { format, quiet } => list(&root, &format, quiet)?,
        Cmd::Pause(IdArg { id }) => crate::ops::pause(&root, &id)?,
        Cmd::Resume(IdArg { id }) => crate::ops::resume(&root, &id)?,
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => print!("{}", crate::ops::ps(&root, &id, &format, &ps_args)?),
        Cmd::Update(a) => {
            let a = *a;
            let o = crate::ops::UpdateOpts {
                resources: a.resources,
                memory: a.memory,
                memory_reservation: a.memory_reservation,
                memory_swap: a.memory_swap,
                kernel_memory: a.kernel_memory,
                kernel_memory_tcp: a.kernel_memory_tcp,
                cpu_shares: a.cpu_share,
                cpu_quota: a.cpu_quota,
                cpu_period: a.cpu_period,
                cpu_rt_runtime: a.cpu_rt_runtime,
                cpu_rt_period: a.cpu_rt_period,
                cpuset_cpus: a.cpuset_cpus,
                cpuset_mems: a.cpuset_mems,
                pids_limit: a.pids_limit,
                blkio_weight: a.blkio_weight,
                l3_cache_schema: None,
                mem_bw_schema: None,
            };
            crate::ops::update(&root, &a.id, &o)?;
        }
        Cmd::Events {
            stats,
            interval,
            id,
        } => {
            let o = crate::events::EventsOpts {
                stats_only: stats,
                interval: crate::events::duration::parse("--interval", &interval)?,
            };
            crate::events::run(&root, &id, &o)?;
        }
        Cmd::Checkpoint(a) => {
            let mut criu: crate::checkpoint::CriuOpts = a.criu.into();
            criu.program = cli.criu;
            let o = crate::checkpoint::CheckpointOpts {
                criu,
                leave_running: a.leave_running,
                pre_dump: a.pre_dump,
                parent_path: a.parent_path,
            };
            crate::checkpoint::checkpoint(&root, &a.id, &o)?;
        }
        Cmd::Restore(a) => {
            need_cgroupfs(cli.systemd_cgroup)?;
            let mut criu: crate::checkpoint::CriuOpts = a.criu.into();
            criu.program = cli.criu;
            let o = crate::checkpoint::RestoreOpts {
                criu,
                bundle: a.bundle,
                detach: a.detach,
                pid_file: a.pid_file,
                console_socket: a.console_socket,
            };
            return crate::checkpoint::restore(&root, &a.id, &o);
        }
        Cmd::Spec { bundle, rootless } => crate::spec::write(&bundle, rootless)?,
        Cmd::Features => {
            let _ = writeln!(std::io::stdout(), "{}", crate::features::json()?);
        }
    }
    Ok(0)
}

fn list(root: &std::path::Path, format: &str, quiet: bool) -> Result<()> {
    let rows = container::list(root)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for r in &rows {
            let _ = writeln!(out, "{}", r.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            // The same owner as the table's column (state JSON leaves it empty).
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut v = r.json();
                    v["owner"] = owner(&root.join(&r.id)).into();
                    v
                })
                .collect();
            let _ = writeln!(out, "{}", serde_json::to_string(&v).unwrap_or_default());
        }
        "table" => {
            let _ = writeln!(
                out,
                "{:<12} {:<8} {:<10} {:<40} {:<30} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &rows {
                let j = r.json();
                let _ = writeln!(
                    out,
                    "{:<12} {:<8} {:<10} {:<40} {:<30} {}",
                    r.id,
                    j["pid"].as_i64().unwrap_or_default(),
                    j["status"].as_str().unwrap_or_default(),
                    j["bundle"].as_str().unwrap_or_default(),
                    j["created"].as_str().unwrap_or_default(),
                    owner(&root.join(&r.id))
                );
                if let Err(e) = &r.row {
                    eprintln!("berth: container {}: {e}", r.id);
                }
            }
        }
        f => return Err(Error::Invalid(format!("invalid format option {f:?}"))),
    }
    Ok(())
}

/// runc's OWNER column: the user owning the container's state directory.
fn owner(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(dir) else {
        return String::new();
    };
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(m.uid()))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{}", m.uid()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
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
        walk(&Cli::command(), "berth", &mut missing);
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
