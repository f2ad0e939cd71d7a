//! ExecSync, what exec liveness and readiness probes use: into the Wasm container (a module
//! from its rootfs, here the same one with other args) and into the native sidecar, with
//! output, exit code, and a timeout that ends a command running too long.

use cri_conformance::check_on;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, ensure};
use cri_conformance::leftovers::in_cgroup;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::{ContainerState, ExecSyncResponse};
use shim_conformance::procfs;

const START_TIMEOUT: Duration = Duration::from_secs(20);

const WASM: &str = "/wasi-demo-app.wasm";
const NATIVE: &str = "/native-demo";

fn pod_with_wasm_and_sidecar(name: &str, handler: &str) -> Result<(Pod, String, String)> {
    let mut pod = Pod::run(name, handler)?;
    let app = pod.run_container(&ContainerSpec::wasm("app", &["sleep", "600"]))?;
    let sidecar = pod.run_container(&ContainerSpec::native("sidecar", &["sleep", "600"]))?;
    for id in [&app, &sidecar] {
        pod.wait_for_state(id, ContainerState::ContainerRunning, START_TIMEOUT)?;
    }
    Ok((pod, app, sidecar))
}

/// The live processes in the pod's cgroup.
fn pod_processes(pod: &Pod) -> Vec<u32> {
    procfs::pids()
        .into_iter()
        .filter(|pid| in_cgroup(*pid, pod.cgroup_parent()) && procfs::alive(*pid).is_some())
        .collect()
}

fn exec(pod: &mut Pod, id: &str, cmd: &[&str]) -> Result<ExecSyncResponse> {
    pod.exec_sync(id, cmd, 10).map_err(|status| {
        anyhow!(
            "ExecSync {cmd:?}: {:?}: {}",
            status.code(),
            status.message()
        )
    })
}

fn expect_output(
    what: &str,
    response: &ExecSyncResponse,
    code: i32,
    stdout: &str,
    stderr: &str,
) -> Result<()> {
    let out = String::from_utf8_lossy(&response.stdout);
    let err = String::from_utf8_lossy(&response.stderr);
    ensure!(
        response.exit_code == code && out == stdout && err == stderr,
        "{what}: exit code {} stdout {out:?} stderr {err:?}, expected {code} {stdout:?} {stderr:?}",
        response.exit_code
    );
    Ok(())
}

fn exec_sync_runs_in_both_containers(handler: &str) -> Result<()> {
    let (mut pod, app, sidecar) = pod_with_wasm_and_sidecar(&format!("exec-{handler}"), handler)?;
    for (name, id, program) in [("app", &app, WASM), ("sidecar", &sidecar, NATIVE)] {
        let response = exec(&mut pod, id, &[program, "echo", "hi"])?;
        expect_output(&format!("echo in {name}"), &response, 0, "hi\n", "")?;
        let response = exec(&mut pod, id, &[program, "stderr", "oops"])?;
        expect_output(&format!("stderr in {name}"), &response, 0, "", "oops\n")?;
        let response = exec(&mut pod, id, &[program, "exit", "7"])?;
        expect_output(&format!("exit 7 in {name}"), &response, 7, "", "")?;
        // The exec sees the container's files (its rootfs, the Wasm container's preopens).
        let response = exec(&mut pod, id, &[program, "cat", "/data/hello.txt"])?;
        expect_output(
            &format!("cat in {name}"),
            &response,
            0,
            "hello from a file\n",
            "",
        )?;
        // The container itself goes on running.
        let status = pod.container_status(id)?;
        ensure!(
            status.state == ContainerState::ContainerRunning as i32,
            "{name} is {:?} after the execs",
            ContainerState::try_from(status.state)
        );
    }
    Ok(())
}

check_on!(exec_sync_runs_in_both_containers: wasmtime, wamr, wasmedge);

/// An exec probe's timeout: CRI kills the exec when it is over and fails the call, and the
/// container goes on running.
#[test]
#[ignore = "needs the private containerd: run make test"]
fn exec_sync_timeout_ends_a_long_command() -> Result<()> {
    const TIMEOUT_SECS: i64 = 2;
    let (mut pod, app, sidecar) = pod_with_wasm_and_sidecar("exec-timeout", "wasmtime")?;
    for (name, id, program) in [("app", &app, WASM), ("sidecar", &sidecar, NATIVE)] {
        let before = pod_processes(&pod);
        let started = Instant::now();
        let result = pod.exec_sync(id, &[program, "sleep", "30"], TIMEOUT_SECS);
        let took = started.elapsed();
        let timeout = Duration::from_secs(TIMEOUT_SECS as u64);
        match result {
            Ok(response) => {
                return Err(anyhow!(
                    "ExecSync `sleep 30` in {name} with a {timeout:?} timeout returned after {took:?}: {response:?}"
                ));
            }
            Err(status) => ensure!(
                status.message().contains("timeout")
                    && took >= timeout
                    && took < timeout + Duration::from_secs(10),
                "ExecSync `sleep 30` in {name} with a {timeout:?} timeout failed after {took:?} with {:?}: {}",
                status.code(),
                status.message()
            ),
        }
        let status = pod.container_status(id)?;
        ensure!(
            status.state == ContainerState::ContainerRunning as i32,
            "{name} is {:?} after the timed-out exec",
            ContainerState::try_from(status.state)
        );
        // The timed-out exec is gone (CRI waits for it to die before answering), and a new
        // one runs normally.
        let after = pod_processes(&pod);
        ensure!(
            after == before,
            "processes in the pod before the exec in {name}: {before:?}, after its timeout: {after:?}"
        );
        let response = exec(&mut pod, id, &[program, "echo", "still", "here"])?;
        expect_output(
            &format!("echo in {name} after the timeout"),
            &response,
            0,
            "still here\n",
            "",
        )?;
    }
    Ok(())
}
