//! A Wasm container that traps, as `kubectl logs` and `kubectl get pod` see it: exit code 134
//! (128 + SIGABRT, as a native abort) with reason `Error`, not 137 (read as a kill or an OOM
//! kill), and why in the container's log (the trap, with wasmtime's backtrace naming the
//! module's function), not only in containerd's own log.

use std::time::Duration;

use anyhow::Result;
use cri_conformance::cases::{finish, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::ContainerState;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

check_on!(a_trap_is_in_the_container_log: wasmtime, wamr, wasmedge);

fn a_trap_is_in_the_container_log(handler: &str) -> Result<()> {
    let mut pod = Pod::run(&format!("trap-{handler}"), handler)?;
    let id = pod.run_container(&ContainerSpec::wasm("app", &["trap"]))?;
    let status = pod.wait_for_state(&id, ContainerState::ContainerExited, EXIT_TIMEOUT)?;
    let (stdout, stderr) = logged_output(&pod.log_path("app"))?;
    let backtrace = handler == "wasmtime";
    let mut failures = Vec::new();
    if status.exit_code != 134
        || status.reason != "Error"
        || !stdout.is_empty()
        || !stderr.contains("unreachable")
        || (backtrace && !stderr.contains("wasi_demo_app::trap"))
    {
        failures.push(format!(
            "expected exit code 134 (Error) and the trap{} in the log's stderr; got exit code {} \
             ({}), stdout {stdout:?}, stderr {stderr:?}",
            if backtrace { " with its backtrace" } else { "" },
            status.exit_code,
            status.reason
        ));
    }
    finish(pod, &[id], failures)
}
