//! The runc-compatible command line. It only parses and dispatches; the
//! work is in `container`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::container::{self, CreateOpts};
use crate::error::{Error, Result};
use crate::logging;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "An OCI container runtime")]
struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/berth")]
    root: PathBuf,
    /// Log file (errors, and debug lines with --debug).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    log_format: logging::Format,
    /// Enable debug logging.
    #[arg(long, global = true)]
    debug: bool,
    /// Use the systemd cgroup driver.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug)]
struct CreateArgs {
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// File to write the container init's pid to.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Pass N extra fds (3..3+N) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Use chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    id: String,
}

#[derive(Args, Debug)]
struct ExecArgs {
    /// A process.json to run instead of the command line.
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (needs --console-socket).
    #[arg(short, long)]
    tty: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Extra environment: KEY=VALUE (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// Run in this sub-cgroup of the container's cgroup.
    #[arg(long)]
    cgroup: Option<String>,
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    id: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// CRIU options shared by checkpoint and restore (runc's names).
#[derive(Args, Debug)]
struct CriuArgs {
    /// Directory for the CRIU image files.
    #[arg(long = "image-path", default_value = "checkpoint")]
    image_path: PathBuf,
    /// Directory for CRIU's log and work files (default: the image path).
    #[arg(long = "work-path")]
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
    #[arg(long = "manage-cgroups-mode")]
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
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    id: String,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    criu: CriuArgs,
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Do not wait for the restored container.
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (left waiting for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
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
    /// Print a container's state.
    State { id: String },
    /// Send a signal to a container.
    Kill {
        /// Send the signal to every process of the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "TERM")]
        signal: String,
    },
    /// Delete a container.
    Delete {
        /// Kill the container first if it is still running.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Freeze every process of a running container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the container's processes: host pids (json) or `ps` rows (table).
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Arguments for ps (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
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
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Checkpoint a running container with CRIU.
    Checkpoint(CheckpointArgs),
    /// Restore a container from a CRIU checkpoint.
    Restore(RestoreArgs),
    /// Write a template config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A template for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Print the implemented features (runtime-spec features.md) as JSON.
    Features,
}

/// runc's `update` flags; sizes take k/m/g suffixes.
#[derive(Args, Debug)]
struct UpdateArgs {
    /// A LinuxResources JSON file, or "-" for stdin; other flags are ignored.
    #[arg(short, long)]
    resources: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Memory plus swap; -1 for unlimited.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    cpu_share: Option<u64>,
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
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
                cgroup_driver: Default::default(),
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
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line, like every other berth error: the first line of clap's report.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("berth: {}", first.trim_start_matches("error: "));
            return 1;
        }
    };
    logging::init(cli.log.clone(), cli.log_format, cli.debug);
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

/// Restore does not place a container in a systemd unit yet.
fn need_cgroupfs(systemd: bool) -> Result<()> {
    if systemd {
        return Err(Error::Unsupported(
            "restore with --systemd-cgroup (the systemd cgroup driver)".into(),
        ));
    }
    Ok(())
}

/// Commands after create take the driver recorded in the container state.
fn driver(systemd: bool) -> crate::cgroups::Driver {
    if systemd {
        crate::cgroups::Driver::Systemd
    } else {
        crate::cgroups::Driver::Cgroupfs
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let root = cli.root;
    logging::debug(|| format!("{:?}", cli.cmd));
    match cli.cmd {
        Cmd::Create(a) => {
            let (id, mut o): (_, container::CreateOpts) = a.into();
            o.cgroup_driver = driver(cli.systemd_cgroup);
            container::create(&root, &id, &o)?;
        }
        Cmd::Start { id } => {
            let dir = crate::state::Dir::open(&root, &id)?;
            let st = dir.load()?;
            container::start(&dir, &st)?;
        }
        Cmd::Run { c, detach, .. } => {
            let (id, mut o): (_, container::CreateOpts) = c.into();
            o.cgroup_driver = driver(cli.systemd_cgroup);
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
        Cmd::State { id } => println!("{}", container::state_json(&root, &id)?),
        Cmd::Kill { all, id, signal } => {
            let sig = crate::signal::parse(&signal)?;
            container::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&root, &id, force)?,
        Cmd::List { format, quiet } => list(&root, &format, quiet)?,
        Cmd::Pause { id } => crate::ops::pause(&root, &id)?,
        Cmd::Resume { id } => crate::ops::resume(&root, &id)?,
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
                l3_cache_schema: a.l3_cache_schema,
                mem_bw_schema: a.mem_bw_schema,
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
            let o = crate::checkpoint::CheckpointOpts {
                criu: a.criu.into(),
                leave_running: a.leave_running,
                pre_dump: a.pre_dump,
                parent_path: a.parent_path,
            };
            crate::checkpoint::checkpoint(&root, &a.id, &o)?;
        }
        Cmd::Restore(a) => {
            need_cgroupfs(cli.systemd_cgroup)?;
            let o = crate::checkpoint::RestoreOpts {
                criu: a.criu.into(),
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
            let _ = writeln!(out, "{}", r.st.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = rows.iter().map(|r| r.st.json(r.status)).collect();
            let _ = writeln!(out, "{}", serde_json::to_string(&v).unwrap_or_default());
        }
        "table" => {
            let _ = writeln!(
                out,
                "{:<12} {:<8} {:<10} {:<40} {:<30} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for r in &rows {
                let j = r.st.json(r.status);
                let _ = writeln!(
                    out,
                    "{:<12} {:<8} {:<10} {:<40} {:<30} {}",
                    j.id,
                    j.pid,
                    j.status,
                    j.bundle.display(),
                    j.created,
                    owner(&root.join(j.id))
                );
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
