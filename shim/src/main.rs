//! containerd-shim-berth-v2: containerd's runtime v2 shim for berth.

mod berth;
mod bootstrap;
mod console;
mod container;
mod error;
mod events;
mod flags;
mod helper;
mod logio;
mod metrics;
mod mounts;
mod oom;
mod ops;
mod options;
mod process;
mod reaper;
mod runcli;
mod serve;
mod service;
mod stdio;
mod sys;

fn main() {
    // One malloc arena: the shim's threads mostly sleep, and a per-thread
    // arena would cost each of them resident pages.
    sys::malloc::one_arena();
    // containerd runs as a systemd Type=notify service and passes its
    // NOTIFY_SOCKET on to its shims. It is containerd's, not the
    // containers': berth given one proxies it into the container and makes
    // `start` wait for the container's READY=1, which a task never sends, so
    // every start would hang. containerd's runc client drops it for runc
    // likewise. Removed here, before any thread, for the helper's workers
    // and the berth binary alike.
    std::env::remove_var("NOTIFY_SOCKET");
    let f = match flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("containerd-shim-berth-v2: {e}");
            std::process::exit(1);
        }
    };
    if f.version {
        println!("containerd-shim-berth-v2 {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let r = match f.action.as_str() {
        "start" => bootstrap::start(&f),
        "delete" => bootstrap::delete(&f),
        "" if f.namespace.is_empty() || f.id.is_empty() => Err(error::Error::Flags(
            "-namespace and -id are required".into(),
        )),
        "" => serve::serve(&f),
        other => Err(error::Error::Flags(format!("unknown action {other:?}"))),
    };
    if let Err(e) = r {
        eprintln!("containerd-shim-berth-v2: {e}");
        std::process::exit(1);
    }
}
