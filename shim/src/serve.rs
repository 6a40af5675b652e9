//! The long-running shim: a subreaper serving the Task API on the socket
//! the start action bound, until containerd shuts it down.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use containerd_shim_protos::ttrpc::Server;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::Signal;

use crate::bootstrap::{self, LISTENER_FD};
use crate::error::{Error, Result};
use crate::events::Publisher;
use crate::flags::Flags;
use crate::reaper::{self, Reaper};
use crate::service::Service;
use crate::sys;

/// containerd reads the shim's stderr through the `log` fifo in the bundle.
fn stderr_to_log() {
    if let Ok(f) = OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open("log")
    {
        // Blocking again, so that a slow reader delays a message instead of
        // dropping it.
        let _ = fcntl(&f, FcntlArg::F_SETFL(OFlag::empty()));
        let _ = nix::unistd::dup2_stderr(&f);
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for OpenOptions {
    /// A fifo opened for writing without a reader would block forever.
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

/// SIGTERM and SIGINT, blocked here (and so in every thread spawned later)
/// and read from the returned signalfd instead.
fn stop_signals() -> Result<nix::sys::signalfd::SignalFd> {
    use nix::sys::signal::SigSet;
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()
        .map_err(Error::sys("block SIGTERM and SIGINT"))?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(Error::sys("signalfd for SIGTERM and SIGINT"))
}

pub fn serve(f: &Flags) -> Result<()> {
    // Container inits are clones of this process when berth runs in it: it
    // must run from a copy of its binary no container can write
    // (CVE-2019-5736; berth::seal). Once per shim, before anything else. An
    // exec'd helper, berth, seals itself.
    #[cfg(feature = "in-process")]
    if !crate::berth::exec_forced() {
        berth::seal::ensure_sealed().map_err(|e| Error::State(format!("seal the shim: {e}")))?;
    }
    stderr_to_log();
    // Decided now: the first container's bundle (our cwd) may be gone when
    // the last container of the group leaves.
    let socket = bootstrap::socket_path(f, &bootstrap::group(Path::new("."), &f.id)?);
    nix::sys::prctl::set_child_subreaper(true).map_err(Error::sys("become subreaper"))?;
    // Before any thread exists, and before SIGCHLD is blocked and SIGPIPE
    // ignored here (the helper sets up its own).
    #[cfg(feature = "in-process")]
    if !crate::berth::exec_forced() {
        crate::helper::fork_helper()?;
    }
    reaper::block_sigchld().map_err(Error::sys("block SIGCHLD"))?;
    let stop = stop_signals()?;
    // A vanished peer must be an EPIPE error.
    let _ = sys::signal::ignore(Signal::SIGPIPE);

    let listener = sys::socket::inherited_listener(LISTENER_FD)
        .ok_or_else(|| Error::State("the listener fd is taken".into()))?;
    let reaper = Reaper::spawn()?;
    if !cfg!(feature = "in-process") && !crate::berth::exec_forced() {
        // Without berth the shim cannot serve; its requests then say why.
        match crate::berth::find_binary(None) {
            Ok(b) => crate::helper::exec_helper(b, Arc::clone(&reaper))?,
            Err(e) => eprintln!("berth shim: {e}"),
        }
    }
    let exit = Arc::new((Mutex::new(false), Condvar::new()));
    // SIGTERM or SIGINT: stop serving and exit as after the last Shutdown
    // (as containerd's own shims do). Running containers are left to
    // containerd, which cleans up a vanished shim through the delete action.
    let on_stop = Arc::clone(&exit);
    reaper.watch_fd(stop.into(), move |_| {
        eprintln!("berth shim: exit signal received, shutting down");
        let (m, cv) = &*on_stop;
        *m.lock().unwrap() = true;
        cv.notify_all();
        false
    })?;
    let publisher = Arc::new(Publisher::new(
        std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        f.namespace.clone(),
    ));
    let service = Service {
        namespace: f.namespace.clone(),
        reaper,
        publisher: Arc::clone(&publisher),
        containers: Mutex::new(HashMap::new()),
        exit: Arc::clone(&exit),
    };
    let service = Arc::new(service);
    // containerd 1.x calls containerd.task.v2.Task, 2.x the identical v3 the
    // protos crate generates: serve both names.
    let mut task = containerd_shim_protos::create_task(service.clone());
    let v2: Vec<_> = containerd_shim_protos::create_task(service)
        .into_iter()
        .map(|(k, h)| {
            (
                k.replacen("containerd.task.v3.", "containerd.task.v2.", 1),
                h,
            )
        })
        .collect();
    task.extend(v2);
    let mut server = Server::new()
        .add_listener(listener.as_raw_fd())
        .map_err(|source| Error::Ttrpc {
            what: "listen",
            source,
        })?
        .register_service(task)
        // Wait calls park a worker each for the process's life.
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(256);
    std::mem::forget(listener);
    server.start().map_err(|source| Error::Ttrpc {
        what: "start server",
        source,
    })?;

    let (m, cv) = &*exit;
    let mut done = m.lock().unwrap();
    while !*done {
        done = cv.wait(done).unwrap();
    }
    drop(done);
    // The last TaskDelete may still be queued.
    publisher.flush();
    let _ = std::fs::remove_file(&socket);
    server.shutdown();
    Ok(())
}
