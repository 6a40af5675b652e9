//! The pod lifecycle: sandbox, two containers, exec, stats, teardown, then the host checks.
//! Whatever was created is torn down even after a failed step, so the host checks always run.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_cri::v1 as api;

use crate::cri::{self, call, Client};
use crate::host;
use crate::report::{want_eq, Report};
use crate::Args;

pub async fn run(a: &Args, mut c: Client, rep: &mut Report) {
    let t = a.timeout;
    match call("Version", t, c.version(api::VersionRequest::default())).await {
        Ok(v) => {
            rep.check(
                "Version: CRI v1",
                want_eq("runtime_api_version", "v1", &v.runtime_api_version),
            );
            rep.note(
                "runtime",
                format!("{} {}", v.runtime_name, v.runtime_version),
            );
        }
        Err(e) => rep.fail("Version: CRI v1", e),
    }
    let netns_before = host::netns_names();
    let logs = a.work.join("pod-logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        rep.fail("pod log directory", format!("{}: {e}", logs.display()));
        return;
    }
    let uid = format!("berth-cri-{}", std::process::id());
    let pod_cfg = cri::pod_config(&uid, &logs, &a.cgroup_parent);
    let bad = format!("{}-unknown", a.handler);
    let req = api::RunPodSandboxRequest {
        config: Some(pod_cfg.clone()),
        runtime_handler: bad.clone(),
    };
    let r = match call("RunPodSandbox", t, c.run_pod_sandbox(req)).await {
        Ok(r) => Err(format!("accepted, sandbox {}", r.pod_sandbox_id)),
        Err(e) if e.to_string().contains(&bad) => Ok(()),
        Err(e) => Err(format!("error does not name the handler: {e}")),
    };
    rep.check("unknown runtime handler refused", r);
    let t0 = Instant::now();
    let req = api::RunPodSandboxRequest {
        config: Some(pod_cfg.clone()),
        runtime_handler: a.handler.clone(),
    };
    let sandbox = match call("RunPodSandbox", t, c.run_pod_sandbox(req)).await {
        Ok(r) => {
            rep.ok(&format!("RunPodSandbox (handler {})", a.handler));
            r.pod_sandbox_id
        }
        Err(e) => {
            rep.fail(&format!("RunPodSandbox (handler {})", a.handler), e);
            return;
        }
    };
    let mut ids = vec![sandbox.clone()];
    let running = exercise(a, &mut c, rep, &sandbox, &pod_cfg, &mut ids).await;
    rep.note(
        "pod up to exec done",
        format!("{} ms", t0.elapsed().as_millis()),
    );
    let t1 = Instant::now();
    teardown(a, &mut c, rep, &sandbox, &ids[1..]).await;
    rep.note("teardown", format!("{} ms", t1.elapsed().as_millis()));
    if !running {
        rep.note("pod", "did not come up; teardown and host checks still run");
    }
    leaks(a, rep, &ids, &netns_before).await;
}

/// Steps 1-4 once the sandbox exists. Returns whether the pod came up.
async fn exercise(
    a: &Args,
    c: &mut Client,
    rep: &mut Report,
    sandbox: &str,
    pod_cfg: &api::PodSandboxConfig,
    ids: &mut Vec<String>,
) -> bool {
    let t = a.timeout;
    let req = api::PodSandboxStatusRequest {
        pod_sandbox_id: sandbox.into(),
        verbose: true,
    };
    let mut pids = Vec::new();
    // (name, container id, pid) for the systemd checks
    let mut procs = Vec::new();
    match call("PodSandboxStatus", t, c.pod_sandbox_status(req)).await {
        Ok(s) => {
            let st = s.status.unwrap_or_default();
            rep.check(
                "sandbox READY",
                want_eq("state", api::PodSandboxState::SandboxReady as i32, st.state),
            );
            let rt = cri::info_field(&s.info, "runtimeType");
            rep.check(
                "sandbox runtime type",
                want_eq(
                    "runtimeType",
                    Some(a.runtime_type.as_str()),
                    rt.as_ref().and_then(|v| v.as_str()),
                ),
            );
            let ip = st.network.map(|n| n.ip).unwrap_or_default();
            rep.note(
                "sandbox IP (CNI)",
                if ip.is_empty() { "none".into() } else { ip },
            );
            match cri::info_field(&s.info, "pid").and_then(|v| v.as_u64()) {
                Some(p) if p > 0 => {
                    pids.push(("sandbox".to_string(), p as u32));
                    procs.push(("sandbox".to_string(), sandbox.to_string(), p as u32));
                }
                other => rep.fail("sandbox pid", format!("verbose info pid: {other:?}")),
            }
        }
        Err(e) => {
            rep.fail("sandbox READY", e);
            return false;
        }
    }

    // Step 2: two containers. c2 writes to stdout so the CRI log path is exercised, and
    // exits on SIGTERM, while c1 (sleep as pid 1 ignores it) needs the SIGKILL after the grace.
    let specs: [(&str, &[&str]); 2] = [
        ("c1", &["sleep", "3600"]),
        (
            "c2",
            &[
                "sh",
                "-c",
                "trap 'exit 0' TERM; echo c2-started; sleep 3600 & wait",
            ],
        ),
    ];
    for (name, cmd) in specs {
        let req = api::CreateContainerRequest {
            pod_sandbox_id: sandbox.into(),
            config: Some(cri::container_config(name, &a.image, cmd)),
            sandbox_config: Some(pod_cfg.clone()),
        };
        let id = match call("CreateContainer", t, c.create_container(req)).await {
            Ok(r) => {
                rep.ok(&format!("CreateContainer {name}"));
                r.container_id
            }
            Err(e) => {
                rep.fail(&format!("CreateContainer {name}"), e);
                return false;
            }
        };
        ids.push(id.clone());
        let req = api::StartContainerRequest {
            container_id: id.clone(),
        };
        if let Err(e) = call("StartContainer", t, c.start_container(req)).await {
            rep.fail(&format!("StartContainer {name}"), e);
            return false;
        }
        rep.ok(&format!("StartContainer {name}"));
        let req = api::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: true,
        };
        match call("ContainerStatus", t, c.container_status(req)).await {
            Ok(s) => {
                let st = s.status.unwrap_or_default();
                rep.check(
                    &format!("{name} RUNNING"),
                    want_eq(
                        "state",
                        api::ContainerState::ContainerRunning as i32,
                        st.state,
                    ),
                );
                match cri::info_field(&s.info, "pid").and_then(|v| v.as_u64()) {
                    Some(p) if p > 0 => {
                        pids.push((name.to_string(), p as u32));
                        procs.push((name.to_string(), id.clone(), p as u32));
                    }
                    other => rep.fail(
                        &format!("{name} pid"),
                        format!("verbose info pid: {other:?}"),
                    ),
                }
            }
            Err(e) => rep.fail(&format!("{name} RUNNING"), e),
        }
    }
    pod_shape(a, rep, &pids);
    if a.systemd {
        crate::systemd::check_running(&a.cgroup_parent, rep, &procs);
    }
    let log = a.work.join("pod-logs/c2.log");
    rep.check(
        "c2 stdout in its CRI log",
        wait_log(&log, "c2-started").await,
    );

    // Step 3: ExecSync.
    let c1 = ids[1].clone();
    let exec = |cmd: &[&str]| api::ExecSyncRequest {
        container_id: c1.clone(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 30,
    };
    match call("ExecSync", t, c.exec_sync(exec(&["echo", "hi"]))).await {
        Ok(r) => {
            rep.check(
                "ExecSync echo hi: stdout",
                want_eq("stdout", "hi\n", &String::from_utf8_lossy(&r.stdout)),
            );
            rep.check(
                "ExecSync echo hi: exit 0",
                want_eq("exit code", 0, r.exit_code),
            );
        }
        Err(e) => rep.fail("ExecSync echo hi", e),
    }
    match call(
        "ExecSync",
        t,
        c.exec_sync(exec(&["sh", "-c", "echo oops >&2; exit 3"])),
    )
    .await
    {
        Ok(r) => {
            rep.check(
                "ExecSync: stderr",
                want_eq("stderr", "oops\n", &String::from_utf8_lossy(&r.stderr)),
            );
            rep.check("ExecSync: exit 3", want_eq("exit code", 3, r.exit_code));
        }
        Err(e) => rep.fail("ExecSync exit 3", e),
    }

    // Step 4: stats.
    let req = api::ContainerStatsRequest {
        container_id: c1.clone(),
    };
    match call("ContainerStats", t, c.container_stats(req)).await {
        Ok(r) => {
            let s = r.stats.unwrap_or_default();
            let cpu = s
                .cpu
                .and_then(|c| c.usage_core_nano_seconds)
                .map(|v| v.value);
            let mem = s.memory.and_then(|m| m.working_set_bytes).map(|v| v.value);
            rep.note(
                "ContainerStats",
                format!("cpu ns {cpu:?}, working set {mem:?}"),
            );
            rep.check(
                "ContainerStats: memory working set",
                if mem.is_some_and(|m| m > 0) {
                    Ok(())
                } else {
                    Err(format!("working set {mem:?}"))
                },
            );
        }
        Err(e) if a.require_stats => rep.fail("ContainerStats", e),
        Err(e) => rep.note("ContainerStats unsupported (not counted)", e),
    }
    true
}

/// Every process of the pod must be a child of a shim (`--shim`) of our containerd; the pod's
/// containers share the sandbox's network namespace. Reports how many shims served it.
fn pod_shape(a: &Args, rep: &mut Report, pids: &[(String, u32)]) {
    let address = a.socket.display().to_string();
    let ours = host::shims_of(&a.shim, &address);
    let mut serving = BTreeSet::new();
    for (name, pid) in pids {
        let parent = host::ppid(*pid);
        let r = match parent {
            Some(pp) if ours.contains(&pp) => {
                serving.insert(pp);
                Ok(())
            }
            other => Err(format!(
                "pid {pid}: parent {other:?} is not one of our shims {ours:?}"
            )),
        };
        rep.check(&format!("{name}: child of a shim"), r);
    }
    rep.note(
        "shims serving the pod",
        format!("{} (goal 1) {serving:?}", serving.len()),
    );
    if let Some(n) = a.want_shims {
        rep.check("shims per pod", want_eq("shims", n, serving.len()));
    }
    let net = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    if let Some((_, sb)) = pids.iter().find(|(n, _)| n == "sandbox") {
        for (name, pid) in pids.iter().filter(|(n, _)| n != "sandbox") {
            rep.check(
                &format!("{name}: in the sandbox's network namespace"),
                want_eq("netns", net(*sb), net(*pid)),
            );
        }
    }
}

async fn wait_log(path: &std::path::Path, want: &str) -> Result<(), String> {
    for _ in 0..50 {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(want)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Err(format!(
        "{} has {got:?}, want a line with {want:?}",
        path.display()
    ))
}

/// Step 5, also run after a failed step: stop and remove what exists.
async fn teardown(
    a: &Args,
    c: &mut Client,
    rep: &mut Report,
    sandbox: &str,
    containers: &[String],
) {
    let t = a.timeout;
    for (i, id) in containers.iter().enumerate() {
        let name = format!("c{}", i + 1);
        // c1 ignores SIGTERM: the 1 s grace period ends in SIGKILL (137); c2 exits 0 on it.
        let want_exit = if i == 0 { 137 } else { 0 };
        let req = api::StopContainerRequest {
            container_id: id.clone(),
            timeout: 1,
        };
        match call("StopContainer", t, c.stop_container(req)).await {
            Ok(_) => rep.ok(&format!("StopContainer {name}")),
            Err(e) => rep.fail(&format!("StopContainer {name}"), e),
        }
        let req = api::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: false,
        };
        match call("ContainerStatus", t, c.container_status(req)).await {
            Ok(s) => {
                let st = s.status.unwrap_or_default();
                rep.check(
                    &format!("{name} EXITED ({want_exit})"),
                    want_eq(
                        "(state, exit)",
                        (api::ContainerState::ContainerExited as i32, want_exit),
                        (st.state, st.exit_code),
                    ),
                );
            }
            Err(e) => rep.fail(&format!("{name} EXITED"), e),
        }
        let req = api::RemoveContainerRequest {
            container_id: id.clone(),
        };
        match call("RemoveContainer", t, c.remove_container(req)).await {
            Ok(_) => rep.ok(&format!("RemoveContainer {name}")),
            Err(e) => rep.fail(&format!("RemoveContainer {name}"), e),
        }
    }
    let req = api::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    };
    match call("StopPodSandbox", t, c.stop_pod_sandbox(req)).await {
        Ok(_) => rep.ok("StopPodSandbox"),
        Err(e) => rep.fail("StopPodSandbox", e),
    }
    let req = api::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    };
    match call("RemovePodSandbox", t, c.remove_pod_sandbox(req)).await {
        Ok(_) => rep.ok("RemovePodSandbox"),
        Err(e) => rep.fail("RemovePodSandbox", e),
    }
    let req = api::PodSandboxStatusRequest {
        pod_sandbox_id: sandbox.into(),
        verbose: false,
    };
    let r = match call("PodSandboxStatus", t, c.pod_sandbox_status(req)).await {
        Err(e) if e.code() == Some(tonic::Code::NotFound) => Ok(()),
        Err(e) => Err(e.to_string()),
        Ok(_) => Err("the removed sandbox still has a status".into()),
    };
    rep.check("sandbox gone from CRI", r);
    let req = api::ListContainersRequest {
        filter: Some(api::ContainerFilter {
            pod_sandbox_id: sandbox.into(),
            ..Default::default()
        }),
    };
    match call("ListContainers", t, c.list_containers(req)).await {
        Ok(r) => rep.check(
            "no container left in CRI",
            want_eq("containers", 0, r.containers.len()),
        ),
        Err(e) => rep.fail("no container left in CRI", e),
    }
}

/// Step 6: nothing of the pod is left on the host.
async fn leaks(a: &Args, rep: &mut Report, ids: &[String], netns_before: &BTreeSet<String>) {
    let address = a.socket.display().to_string();
    // A shim exits shortly after its last task is deleted.
    let mut shims = host::shims_of(&a.shim, &address);
    for _ in 0..50 {
        if shims.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        shims = host::shims_of(&a.shim, &address);
    }
    rep.check(
        "no shim process left",
        want_eq("shims", BTreeSet::new(), shims),
    );
    let state: Vec<String> = host::entries_below(&a.berth_root)
        .into_iter()
        .filter(|e| ids.iter().any(|id| e.contains(id.as_str())) || !a.berth_root.join(e).is_dir())
        .collect();
    rep.check(
        "no runtime state left",
        want_eq("entries", Vec::<String>::new(), state),
    );
    let needles: Vec<&str> = ids.iter().map(String::as_str).collect();
    let m = host::mounts_matching(&a.work, &needles);
    rep.check("no mount left", want_eq("mounts", Vec::<String>::new(), m));
    if a.systemd {
        crate::systemd::leaks(&a.cgroup_parent, rep, ids);
    } else {
        cgroupfs_leaks(a, rep);
    }
    // libcni caches each ADD result until the matching DEL.
    let cached: Vec<String> = host::entries_below(std::path::Path::new("/var/lib/cni/results"))
        .into_iter()
        .filter(|e| e.contains(ids[0].as_str()))
        .collect();
    rep.check(
        "no CNI result cached",
        want_eq("cached", Vec::<String>::new(), cached),
    );
    let after = host::netns_names();
    let new: Vec<&String> = after.difference(netns_before).collect();
    rep.check(
        "no network namespace left",
        want_eq("new netns", Vec::<&String>::new(), new),
    );
}

/// No cgroup is left below the pod's cgroupfs parent, in any hierarchy.
fn cgroupfs_leaks(a: &Args, rep: &mut Report) {
    let cg: Vec<String> = host::cgroups_named(&a.cgroup_parent)
        .into_iter()
        .flat_map(|d| {
            host::entries_below(std::path::Path::new(&d))
                .into_iter()
                .map(move |e| format!("{d}/{e}"))
        })
        .filter(|p| std::path::Path::new(p).is_dir())
        .collect();
    rep.check(
        "no container cgroup left",
        want_eq("cgroups", Vec::<String>::new(), cg),
    );
}
