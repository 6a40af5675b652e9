//! berth-cri-test: drives one pod through containerd's CRI plugin (CRI v1) with the berth
//! runtime handler and checks the result on the host. Run by conformance/cri/run.sh, which
//! owns the private containerd; this binary only talks CRI and reads /proc.

mod cri;
mod host;
mod pod;
mod report;
mod systemd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(about = "CRI v1 pod lifecycle against containerd with the berth shim")]
pub struct Args {
    /// containerd's gRPC socket (the CRI service is served there).
    #[arg(long)]
    pub socket: PathBuf,
    /// CRI runtime handler that maps to io.containerd.berth.v2 in containerd's config.
    #[arg(long, default_value = "berth")]
    pub handler: String,
    /// runtime_type the handler must resolve to (read back from the sandbox's verbose status).
    #[arg(long, default_value = "io.containerd.berth.v2")]
    pub runtime_type: String,
    /// Image of the two containers (already in containerd's k8s.io namespace).
    #[arg(long, default_value = "localhost/busybox:latest")]
    pub image: String,
    /// The run's private directory: pod logs go below it, and no mount may stay below it.
    #[arg(long)]
    pub work: PathBuf,
    /// The runtime's state root the shim was configured with (must be empty of our ids at the
    /// end).
    #[arg(long)]
    pub berth_root: PathBuf,
    /// Cgroup parent of the pod: `/<name>` (cgroupfs driver), or with `--systemd` a slice
    /// as kubelet names it (`kubepods-besteffort-pod<uid>.slice`).
    #[arg(long)]
    pub cgroup_parent: String,
    /// The handler runs with systemd cgroups (SystemdCgroup = true): each container must be a
    /// `cri-containerd-<id>.scope` unit in the parent slice, and none may be left.
    #[arg(long)]
    pub systemd: bool,
    /// File name of the shim binary the handler runs (its processes are looked for).
    #[arg(long, default_value = "containerd-shim-berth-v2")]
    pub shim: String,
    /// Fail when ContainerStats is not answered (set once the shim implements Stats).
    #[arg(long)]
    pub require_stats: bool,
    /// Number of shim processes the pod must be served by; unset: only reported.
    #[arg(long)]
    pub want_shims: Option<usize>,
    /// Deadline of each CRI call, in seconds.
    #[arg(long, default_value_t = 20)]
    pub timeout: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut rep = report::Report::default();
    match cri::connect(&args.socket).await {
        Ok(client) => pod::run(&args, client, &mut rep).await,
        Err(e) => rep.fail("connect", e),
    }
    if rep.summary() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
