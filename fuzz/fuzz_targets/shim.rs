//! The shim's decoding of what containerd sends: the first byte picks the
//! input, the rest is its bytes.
//!
//! - 0..=4: a Task request as ttrpc hands it over (protobuf: CreateTask,
//!   Update, Checkpoint, Kill, Exec), decoded by the protos crate as the
//!   server does, then turned into what the shim runs: runtime options,
//!   rootfs mount options, stdio URIs, the berth `Request` and, for the
//!   exec-only build, the berth command line, which must parse with the
//!   binary's own clap definition and name the same container and signal.
//! - 5: a runtime options `Any`; 6: the shim config file; 7: shim flags,
//!   stdio URIs and the group annotation of a config.json.
//!
//! The shim is a binary, so its modules are included here with #[path],
//! and so is the berth command line (runtime/src/cli.rs). Nothing is
//! mounted, spawned or read from the file system.
#![no_main]
#![allow(dead_code, unused_imports)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::shim::{
    CheckpointTaskRequest, CreateTaskRequest, ExecProcessRequest, KillRequest, UpdateTaskRequest,
};
use libfuzzer_sys::fuzz_target;

#[path = "../../shim/src/berth.rs"]
mod berth;
#[path = "../../shim/src/bootstrap.rs"]
mod bootstrap;
#[path = "../../shim/src/console.rs"]
mod console;
#[path = "../../shim/src/container.rs"]
mod container;
#[path = "../../shim/src/error.rs"]
mod error;
#[path = "../../shim/src/events.rs"]
mod events;
#[path = "../../shim/src/flags.rs"]
mod flags;
#[path = "../../shim/src/helper.rs"]
mod helper;
#[path = "../../shim/src/logio.rs"]
mod logio;
#[path = "../../shim/src/metrics.rs"]
mod metrics;
#[path = "../../shim/src/mounts.rs"]
mod mounts;
#[path = "../../shim/src/oom.rs"]
mod oom;
#[path = "../../shim/src/ops.rs"]
mod ops;
#[path = "../../shim/src/options.rs"]
mod options;
#[path = "../../shim/src/process.rs"]
mod process;
#[path = "../../shim/src/reaper.rs"]
mod reaper;
#[path = "../../shim/src/runcli.rs"]
mod runcli;
#[path = "../../shim/src/serve.rs"]
mod serve;
#[path = "../../shim/src/service.rs"]
mod service;
#[path = "../../shim/src/stdio.rs"]
mod stdio;
#[path = "../../shim/src/sys/mod.rs"]
mod sys;

#[path = "../../runtime/src"]
mod src {
    pub mod cli;
}
use src::cli;

use ::berth::api::{CreateOptions, ExecOptions, Request};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => create(rest),
        1 => update(rest),
        2 => checkpoint(rest),
        3 => kill(rest),
        4 => exec(rest),
        5 => {
            if let Ok(any) = Any::parse_from_bytes(rest) {
                runtime_options(&any);
            }
        }
        6 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = options::parse_config(text, Path::new("/fuzz/shim.toml"));
            }
        }
        _ => misc(rest),
    }
});

/// containerd's container and exec ids (identifiers.Validate): what the
/// shim is ever asked about.
fn valid_id(s: &str) -> bool {
    s.len() <= 76
        && s.split(['.', '_', '-'])
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A value containerd passes as a path: absolute.
fn valid_path(s: &str) -> bool {
    s.starts_with('/')
}

/// The options `Any`, without reading a config file it may name.
fn runtime_options(any: &Any) {
    if any.type_url.rsplit('/').next() == Some("runtimeoptions.v1.Options") {
        let _ = options::generic_config_path(&any.value);
        return;
    }
    let decoded = options::decode(Some(any));
    if any.type_url.rsplit('/').next() != Some("containerd.runc.v1.Options") {
        return;
    }
    let Ok(raw) = containerd_shim_protos::shim::oci::Options::parse_from_bytes(&any.value) else {
        assert!(decoded.is_err());
        return;
    };
    // What the shim cannot honour is refused, never dropped: the fields it
    // has no use for, and fields this proto does not know.
    let unsupported = !raw.shim_cgroup.is_empty()
        || raw.io_uid != 0
        || raw.io_gid != 0
        || !raw.criu_image_path.is_empty()
        || !raw.criu_work_path.is_empty()
        || !raw.task_api_address.is_empty()
        || raw.task_api_version != 0
        || raw.special_fields.unknown_fields().iter().next().is_some();
    match decoded {
        Ok(o) => {
            assert!(!unsupported, "{raw:?} taken as {o:?}");
            assert_eq!(o.systemd_cgroup, raw.systemd_cgroup);
            assert_eq!(o.no_pivot_root, raw.no_pivot_root);
            assert_eq!(o.no_new_keyring, raw.no_new_keyring);
            assert_eq!(o.binary_name.unwrap_or_default(), raw.binary_name);
        }
        Err(_) => assert!(unsupported, "{raw:?} refused"),
    }
}

/// The berth binary must accept the command line the shim builds for `req`,
/// for the same container (and signal).
fn through_binary(req: &Request, signal: Option<i32>) {
    let b = berth::Berth {
        binary: Some("/usr/bin/berth".into()),
        root: "/run/containerd/berth/default".into(),
        systemd_cgroup: false,
        log: "/run/bundle/log.json".into(),
    };
    let pid_file = runcli::starts_process(req).then(|| Path::new("/run/bundle/pid"));
    let Ok(line) = runcli::command_args(req, pid_file) else {
        return;
    };
    let mut argv: Vec<OsString> = vec!["berth".into()];
    argv.extend(runcli::global_args(&b));
    argv.extend(line);
    match cli::fuzz::shim_line(&argv) {
        Ok((id, sig)) => {
            assert_eq!(id, req.id(), "{argv:?}");
            assert_eq!(sig, signal, "{argv:?}");
        }
        Err(e) => panic!("berth refuses the shim's {argv:?}: {e}"),
    }
}

fn create(data: &[u8]) {
    let Ok(req) = CreateTaskRequest::parse_from_bytes(data) else {
        return;
    };
    if let Some(any) = req.options.as_ref() {
        runtime_options(any);
    }
    for m in &req.rootfs {
        let (_, opts) = mounts::parse_options(&m.options);
        if let Some((dir, short)) = mounts::compact_lowerdir(&opts) {
            compacted(&opts, &dir, &short);
        }
    }
    for uri in [&req.stdin, &req.stdout, &req.stderr] {
        let _ = logio::parse(uri);
    }
    if valid_id(&req.id) && valid_path(&req.bundle) {
        let r = Request::Create {
            id: req.id.clone(),
            options: CreateOptions {
                bundle: PathBuf::from(&req.bundle),
                console_socket: req.terminal.then(|| "/tmp/console.sock".into()),
                ..CreateOptions::default()
            },
        };
        through_binary(&r, None);
    }
}

/// containerd's long-overlay form: the same lowerdirs, relative to `dir`.
fn compacted(data: &str, dir: &Path, short: &str) {
    let lower = |d: &str| {
        d.split(',')
            .find_map(|o| o.strip_prefix("lowerdir="))
            .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
    };
    let (Some(long), Some(rel)) = (lower(data), lower(short)) else {
        panic!("{short:?} lost lowerdir of {data:?}");
    };
    assert_eq!(long.len(), rel.len());
    for (l, r) in long.iter().zip(&rel) {
        assert_eq!(Path::new(l), dir.join(r), "{data:?} -> {dir:?} {short:?}");
    }
    assert!(short.len() < data.len());
}

fn update(data: &[u8]) {
    let Ok(req) = UpdateTaskRequest::parse_from_bytes(data) else {
        return;
    };
    let Ok(resources) = ops::update_resources(req.resources.as_ref()) else {
        return;
    };
    // The binary reads them back from its stdin (`update -r -`).
    let text = serde_json::to_vec(&resources).expect("serialize resources");
    let back: ::berth::api::LinuxResources =
        serde_json::from_slice(&text).expect("read back resources");
    assert_eq!(back, *resources);
    if valid_id(&req.id) {
        through_binary(
            &Request::Update {
                id: req.id.clone(),
                resources,
            },
            None,
        );
    }
}

fn checkpoint(data: &[u8]) {
    let Ok(req) = CheckpointTaskRequest::parse_from_bytes(data) else {
        return;
    };
    let Ok(o) = ops::checkpoint_options(&req.path, req.options.as_ref()) else {
        return;
    };
    assert!(!o.criu.image_path.as_os_str().is_empty());
    let paths_ok = o.criu.image_path.to_str().is_some_and(valid_path)
        && o.criu
            .work_path
            .as_ref()
            .is_none_or(|w| w.to_str().is_some_and(valid_path))
        && o.criu
            .manage_cgroups_mode
            .as_ref()
            .is_none_or(|m| !m.starts_with('-'));
    if valid_id(&req.id) && paths_ok {
        through_binary(
            &Request::Checkpoint {
                id: req.id.clone(),
                options: o,
            },
            None,
        );
    }
}

fn kill(data: &[u8]) {
    let Ok(req) = KillRequest::parse_from_bytes(data) else {
        return;
    };
    // As Handle::kill passes it on.
    let signal = req.signal as i32;
    if !valid_id(&req.id) || ::berth::api::parse_signal(&signal.to_string()).is_err() {
        return;
    }
    let r = Request::Kill {
        id: req.id.clone(),
        signal,
        all: req.all,
    };
    through_binary(&r, Some(signal));
}

fn exec(data: &[u8]) {
    let Ok(req) = ExecProcessRequest::parse_from_bytes(data) else {
        return;
    };
    // The spec is written to a file that berth reads as an OCI Process.
    if let Some(spec) = req.spec.as_ref() {
        let _ = serde_json::from_slice::<oci_spec::runtime::Process>(&spec.value);
    }
    for uri in [&req.stdin, &req.stdout, &req.stderr] {
        let _ = logio::parse(uri);
    }
    if valid_id(&req.id) && valid_id(&req.exec_id) {
        let r = Request::Exec {
            id: req.id.clone(),
            options: Box::new(ExecOptions {
                process_file: Some(format!("/run/bundle/exec-{}.json", req.exec_id).into()),
                detach: true,
                ..ExecOptions::default()
            }),
        };
        through_binary(&r, None);
    }
}

fn misc(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = flags::parse(text.split('\0').map(str::to_owned));
    for uri in text.lines() {
        let _ = logio::parse(uri);
    }
    let _ = bootstrap::group_of(data, Path::new("/fuzz/config.json"), "fuzz");
    // The helper's requests cross a process boundary as JSON.
    if let Ok(r) = serde_json::from_slice::<Request>(data) {
        let text = serde_json::to_string(&r).expect("serialize a request");
        let back: Request = serde_json::from_str(&text).expect("read back a request");
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
    }
}
