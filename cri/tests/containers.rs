//! A Wasm container and a native sidecar in one pod: lifecycle, status, listing, stats,
//! logs, and one shim for the whole pod.

use cri_conformance::check_on;
use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cri_conformance::client::{CALL_TIMEOUT, named};
use cri_conformance::leftovers::{PodFootprint, in_cgroup};
use cri_conformance::logs;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::{
    ContainerState, ContainerStats, ContainerStatsFilter, ContainerStatsRequest,
    ListContainerStatsRequest, PodSandboxStatsRequest,
};
use shim_conformance::leftovers::shims_of;
use shim_conformance::procfs;

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Both containers of a pod, started: the Wasm demo and the native sidecar, sleeping.
fn pod_with_wasm_and_sidecar(name: &str, handler: &str) -> Result<(Pod, String, String)> {
    let mut pod = Pod::run(name, handler)?;
    let app = pod.create_container(&ContainerSpec::wasm("app", &["sleep", "600"]))?;
    let sidecar = pod.create_container(&ContainerSpec::native("sidecar", &["sleep", "600"]))?;
    for id in [&app, &sidecar] {
        let status = pod.container_status(id)?;
        ensure!(
            status.state == ContainerState::ContainerCreated as i32,
            "container {id} is {:?} before start, expected created",
            ContainerState::try_from(status.state)
        );
    }
    for id in [&app, &sidecar] {
        pod.start_container(id)?;
    }
    for id in [&app, &sidecar] {
        pod.wait_for_state(id, ContainerState::ContainerRunning, START_TIMEOUT)?;
    }
    Ok((pod, app, sidecar))
}

fn one_shim_runs_the_pause_the_wasm_app_and_the_sidecar(handler: &str) -> Result<()> {
    let (mut pod, app, sidecar) = pod_with_wasm_and_sidecar(&format!("shared-{handler}"), handler)?;

    let listed = pod.list_containers()?;
    let names: BTreeSet<(String, i32)> = listed
        .iter()
        .map(|c| {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            (name, c.state)
        })
        .collect();
    let running = ContainerState::ContainerRunning as i32;
    let expected = BTreeSet::from([("app".to_owned(), running), ("sidecar".to_owned(), running)]);
    ensure!(
        names == expected,
        "ListContainers of the pod: {names:?}, expected {expected:?}"
    );
    ensure!(
        listed.iter().all(|c| c.pod_sandbox_id == pod.id),
        "ListContainers filtered by pod {} returned others: {listed:?}",
        pod.id
    );

    // One shim process for the whole pod: started for the sandbox, joined by both
    // containers (a container with a shim of its own would show up under its own id).
    let shims: Vec<u32> = [&pod.id, &app, &sidecar]
        .into_iter()
        .flat_map(|id| shims_of(id))
        .collect();
    ensure!(
        shims.len() == 1 && shims_of(&pod.id) == shims,
        "shim processes of pod {} and its containers: {shims:?}, expected one, the sandbox's",
        pod.id
    );
    let pod_processes: Vec<u32> = procfs::pids()
        .into_iter()
        .filter(|pid| in_cgroup(*pid, pod.cgroup_parent()) && procfs::alive(*pid).is_some())
        .collect();
    // pause, the Wasm app and the sidecar, at least.
    ensure!(
        pod_processes.len() >= 3,
        "processes in the pod's cgroup: {pod_processes:?}, expected pause, app and sidecar"
    );
    for pid in &pod_processes {
        ensure!(
            procfs::ancestors(*pid).contains(&shims[0]),
            "process {pid} `{}` of pod {} does not descend from the pod's shim {}",
            procfs::cmdline(*pid).join(" "),
            pod.id,
            shims[0]
        );
    }

    let footprint = PodFootprint::observe(&mut pod, &[&app, &sidecar])?;
    // StopPodSandbox stops the running containers too.
    pod.stop().context("StopPodSandbox")?;
    for id in [&app, &sidecar] {
        let status = pod.container_status(id)?;
        ensure!(
            status.state == ContainerState::ContainerExited as i32,
            "container {id} is {:?} after StopPodSandbox",
            ContainerState::try_from(status.state)
        );
    }
    pod.remove().context("RemovePodSandbox")?;
    footprint.expect_gone()
}

check_on!(one_shim_runs_the_pause_the_wasm_app_and_the_sidecar: wasmtime, wamr, wasmedge);

fn expect_usage(what: &str, stats: &ContainerStats) -> Result<()> {
    let cpu = stats
        .cpu
        .as_ref()
        .and_then(|c| c.usage_core_nano_seconds)
        .map(|v| v.value)
        .unwrap_or(0);
    let memory = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value)
        .unwrap_or(0);
    ensure!(cpu > 0, "{what}: no CPU usage in {stats:?}");
    ensure!(memory > 0, "{what}: no memory working set in {stats:?}");
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn container_and_pod_stats_show_cpu_and_memory() -> Result<()> {
    let (mut pod, app, sidecar) = pod_with_wasm_and_sidecar("stats", "wasmtime")?;
    for (name, id) in [("app", &app), ("sidecar", &sidecar)] {
        let request = ContainerStatsRequest {
            container_id: id.clone(),
        };
        let stats = named(
            &format!("ContainerStats {name}"),
            pod.cri().runtime(CALL_TIMEOUT, |mut c| async move {
                c.container_stats(request).await
            }),
        )?
        .stats
        .with_context(|| format!("ContainerStats {name} without stats"))?;
        expect_usage(&format!("ContainerStats of {name}"), &stats)?;
    }

    let request = ListContainerStatsRequest {
        filter: Some(ContainerStatsFilter {
            pod_sandbox_id: pod.id.clone(),
            ..Default::default()
        }),
    };
    let listed = named(
        "ListContainerStats",
        pod.cri().runtime(CALL_TIMEOUT, |mut c| async move {
            c.list_container_stats(request).await
        }),
    )?
    .stats;
    let ids: BTreeSet<String> = listed
        .iter()
        .filter_map(|s| s.attributes.as_ref().map(|a| a.id.clone()))
        .collect();
    ensure!(
        ids == BTreeSet::from([app.clone(), sidecar.clone()]),
        "ListContainerStats of pod {}: {ids:?}, expected the app and the sidecar",
        pod.id
    );
    for stats in &listed {
        expect_usage("ListContainerStats", stats)?;
    }

    let request = PodSandboxStatsRequest {
        pod_sandbox_id: pod.id.clone(),
    };
    let pod_stats = named(
        "PodSandboxStats",
        pod.cri().runtime(CALL_TIMEOUT, |mut c| async move {
            c.pod_sandbox_stats(request).await
        }),
    )?
    .stats
    .context("PodSandboxStats without stats")?;
    let linux = pod_stats
        .linux
        .context("PodSandboxStats without Linux stats")?;
    let cpu = linux
        .cpu
        .and_then(|c| c.usage_core_nano_seconds)
        .map(|v| v.value)
        .unwrap_or(0);
    let memory = linux
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value)
        .unwrap_or(0);
    ensure!(cpu > 0, "PodSandboxStats: no CPU usage");
    ensure!(memory > 0, "PodSandboxStats: no memory working set");
    Ok(())
}

/// Runs container `spec` in `pod` until it exits and returns its status.
fn run_to_exit(pod: &mut Pod, spec: &ContainerSpec) -> Result<k8s_cri::v1::ContainerStatus> {
    let id = pod.run_container(spec)?;
    pod.wait_for_state(&id, ContainerState::ContainerExited, START_TIMEOUT)
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn exited_containers_report_exit_code_reason_and_cri_logs() -> Result<()> {
    let mut pod = Pod::run("exits", "wasmtime")?;
    // (container, spec, exit code, reason, stream, logged line)
    let cases = [
        (
            ContainerSpec::wasm("wasm-out", &["echo", "hello", "from", "wasm"]),
            0,
            "Completed",
            "stdout",
            "hello from wasm",
        ),
        (
            ContainerSpec::wasm("wasm-err", &["stderr", "wasm trouble"]),
            0,
            "Completed",
            "stderr",
            "wasm trouble",
        ),
        (
            ContainerSpec::wasm("wasm-exit", &["exit", "3"]),
            3,
            "Error",
            "",
            "",
        ),
        (
            ContainerSpec::native("native-out", &["echo", "hello", "from", "native"]),
            0,
            "Completed",
            "stdout",
            "hello from native",
        ),
        (
            ContainerSpec::native("native-err", &["stderr", "native trouble"]),
            0,
            "Completed",
            "stderr",
            "native trouble",
        ),
    ];
    for (spec, code, reason, stream, line) in &cases {
        let status = run_to_exit(&mut pod, spec)?;
        ensure!(
            status.exit_code == *code && status.reason == *reason,
            "{}: exit code {} reason {:?}, expected {code} {reason:?} ({status:?})",
            spec.name,
            status.exit_code,
            status.reason
        );
        // containerd stamps started_at when Start returns and finished_at with the exit the
        // shim reports, so a fast exit may carry the earlier time: both must be there.
        ensure!(
            status.started_at > 0 && status.finished_at >= status.created_at,
            "{}: created at {} started at {} finished at {}",
            spec.name,
            status.created_at,
            status.started_at,
            status.finished_at
        );
        let path = pod.log_path(&spec.name);
        ensure!(
            status.log_path == path.display().to_string(),
            "{}: log path {:?}, expected {}",
            spec.name,
            status.log_path,
            path.display()
        );
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the log of {}", spec.name))?;
        let entries = logs::parse(&text).with_context(|| format!("the log of {}", spec.name))?;
        let lines: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.stream.as_str(), e.content.as_str()))
            .collect();
        let expected: Vec<(&str, &str)> = if line.is_empty() {
            Vec::new()
        } else {
            vec![(*stream, *line)]
        };
        ensure!(
            lines == expected && entries.iter().all(|e| !e.partial),
            "{}: log {text:?}, expected the full line(s) {expected:?}",
            spec.name
        );
    }
    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}

/// The shims read `io.containerd.wasm.*` annotations (e.g. `io.containerd.wasm.network`)
/// from the runtime spec: CRI must pass them on from the pod and from the container.
#[test]
#[ignore = "needs the private containerd: run make test"]
fn wasm_annotations_reach_the_shim() -> Result<()> {
    const POD_KEY: &str = "io.containerd.wasm.network";
    const CONTAINER_KEY: &str = "io.containerd.wasm.from-container";
    let mut pod = Pod::run_annotated("annotations", "wasmtime", &[(POD_KEY, "allow")])?;
    let spec = ContainerSpec::wasm("app", &["sleep", "600"])
        .annotation(CONTAINER_KEY, "yes")
        .annotation("not-for-the-shim.example.com/key", "no");
    let id = pod.create_container(&spec)?;
    let runtime_spec = pod.runtime_spec(&id)?;
    let annotations = &runtime_spec["annotations"];
    ensure!(
        annotations[POD_KEY] == "allow" && annotations[CONTAINER_KEY] == "yes",
        "the container's runtime spec lacks the io.containerd.wasm.* annotations: {annotations}"
    );
    ensure!(
        annotations
            .get("not-for-the-shim.example.com/key")
            .is_none(),
        "an annotation outside io.containerd.wasm.* reached the runtime spec: {annotations}"
    );
    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}
