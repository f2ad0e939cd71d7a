//! Stopping as the kubelet does: StopContainer with a grace period (SIGTERM, then SIGKILL
//! once it is over), and stop and remove calls that are idempotent, as CRI requires.

use cri_conformance::check_on;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cri_conformance::leftovers::PodFootprint;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::ContainerState;

const START_TIMEOUT: Duration = Duration::from_secs(20);
const GRACE: Duration = Duration::from_secs(2);
/// How long after the grace period the container may take to die of SIGKILL.
const KILL_SLACK: Duration = Duration::from_secs(10);
const SIGTERM_EXIT: i32 = 128 + 15;
const SIGKILL_EXIT: i32 = 128 + 9;

/// StopContainer sends SIGTERM first: the Wasm module, which cannot handle signals, ends at
/// once (128 + SIGTERM; `loop` spins without syscalls, so it ends in the middle of guest
/// code). The native sidecar is pid 1 of its own pid namespace (the kubelet's default) and
/// installs no SIGTERM handler, so the kernel drops SIGTERM for it: StopContainer must wait
/// out the grace period and then SIGKILL it.
fn stop_sends_sigterm_then_sigkill_after_the_grace_period(handler: &str) -> Result<()> {
    let mut pod = Pod::run(&format!("grace-{handler}"), handler)?;
    let app = pod.run_container(&ContainerSpec::wasm("app", &["loop"]))?;
    let sidecar = pod.run_container(&ContainerSpec::native("sidecar", &["sleep", "600"]))?;
    for id in [&app, &sidecar] {
        pod.wait_for_state(id, ContainerState::ContainerRunning, START_TIMEOUT)?;
    }
    for (name, id, ended_by_sigterm) in [("app", &app, true), ("sidecar", &sidecar, false)] {
        let started = Instant::now();
        pod.stop_container(id, GRACE.as_secs() as i64)
            .map_err(|s| anyhow::anyhow!("StopContainer {name}: {s}"))?;
        let took = started.elapsed();
        let (expected_exit, in_time) = if ended_by_sigterm {
            (SIGTERM_EXIT, took < GRACE)
        } else {
            (SIGKILL_EXIT, took >= GRACE && took < GRACE + KILL_SLACK)
        };
        ensure!(
            in_time,
            "StopContainer {name} with a {GRACE:?} grace period took {took:?}"
        );
        let status = pod.container_status(id)?;
        ensure!(
            status.state == ContainerState::ContainerExited as i32
                && status.exit_code == expected_exit,
            "{name} after StopContainer: {:?} exit code {}, expected exited with {expected_exit}",
            ContainerState::try_from(status.state),
            status.exit_code
        );
        // Idempotent: stopping a stopped container succeeds and changes nothing.
        pod.stop_container(id, GRACE.as_secs() as i64)
            .map_err(|s| anyhow::anyhow!("StopContainer {name} again: {s}"))?;
        let again = pod.container_status(id)?;
        ensure!(
            again.exit_code == expected_exit && again.finished_at == status.finished_at,
            "{name}: a second StopContainer changed the status to {again:?}"
        );
    }
    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}

check_on!(stop_sends_sigterm_then_sigkill_after_the_grace_period: wasmtime, wamr, wasmedge);

/// The kubelet's teardown, with every call repeated: stop and remove containers, then the
/// pod; nothing of it is left afterwards, and repeating any step succeeds.
#[test]
#[ignore = "needs the private containerd: run make test"]
fn teardown_is_idempotent_and_leaves_nothing() -> Result<()> {
    let mut pod = Pod::run("teardown", "wasmtime")?;
    let app = pod.run_container(&ContainerSpec::wasm("app", &["sleep", "600"]))?;
    let sidecar = pod.run_container(&ContainerSpec::native("sidecar", &["sleep", "600"]))?;
    for id in [&app, &sidecar] {
        pod.wait_for_state(id, ContainerState::ContainerRunning, START_TIMEOUT)?;
    }
    let footprint = PodFootprint::observe(&mut pod, &[&app, &sidecar])?;
    for id in [&app, &sidecar] {
        pod.stop_container(id, 0)
            .map_err(|s| anyhow::anyhow!("StopContainer {id}: {s}"))?;
        pod.remove_container(id)
            .map_err(|s| anyhow::anyhow!("RemoveContainer {id}: {s}"))?;
        pod.remove_container(id)
            .map_err(|s| anyhow::anyhow!("RemoveContainer {id} again: {s}"))?;
        let listed = pod.list_containers()?;
        ensure!(
            listed.iter().all(|c| &c.id != id),
            "removed container {id} is still listed: {listed:?}"
        );
    }
    pod.stop()
        .map_err(|s| anyhow::anyhow!("StopPodSandbox: {s}"))?;
    pod.stop()
        .map_err(|s| anyhow::anyhow!("StopPodSandbox again: {s}"))?;
    pod.remove()
        .map_err(|s| anyhow::anyhow!("RemovePodSandbox: {s}"))?;
    footprint.expect_gone()?;
    pod.remove()
        .map_err(|s| anyhow::anyhow!("RemovePodSandbox of a removed pod: {s}"))?;
    // What is gone is gone: the kubelet treats NotFound from StopPodSandbox as done.
    match pod.stop() {
        Ok(()) => Ok(()),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
        Err(status) => Err(anyhow::anyhow!(
            "StopPodSandbox of a removed pod: {status}, expected success or NotFound"
        )),
    }
}
