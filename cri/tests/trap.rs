//! A Wasm container that traps, as `kubectl logs` and `kubectl get pod` see it: exit code 134
//! (128 + SIGABRT, as a native abort) with reason `Error`, not 137 (read as a kill or an OOM
//! kill), and why in the container's log (the trap, with wasmtime's backtrace giving the file
//! and line of each frame), not only in containerd's own log; and, when the container asks for it,
//! the trap's core dump in a volume of the pod (docs/debugging.md walks through both).

use std::time::Duration;

use anyhow::Result;
use cri_conformance::cases::{finish, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::{ContainerState, Mount};

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

check_on!(a_trap_is_in_the_container_log: wasmtime, wamr, wasmedge);
check_on!(a_trap_leaves_its_core_dump_in_a_pod_volume: wasmtime);

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
        || (backtrace && !stderr.contains("wasi-demo-app/src/main.rs:31"))
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

fn a_trap_leaves_its_core_dump_in_a_pod_volume(handler: &str) -> Result<()> {
    let dumps = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cri-coredumps-{handler}-{}", std::process::id()));
    std::fs::create_dir_all(&dumps)?;
    let mut pod = Pod::run(&format!("coredump-{handler}"), handler)?;
    let spec = ContainerSpec::wasm("app", &["trap"])
        .annotation("io.containerd.wasm.coredump-dir", "/dumps")
        .mount(Mount {
            container_path: "/dumps".to_owned(),
            host_path: dumps.display().to_string(),
            ..Default::default()
        });
    let id = pod.run_container(&spec)?;
    let status = pod.wait_for_state(&id, ContainerState::ContainerExited, EXIT_TIMEOUT)?;
    let (_, stderr) = logged_output(&pod.log_path("app"))?;
    let written: Vec<_> = std::fs::read_dir(&dumps)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let mut failures = Vec::new();
    let named = written.len() == 1
        && written[0].ends_with(".coredump")
        && stderr.contains(&format!("core dump written to /dumps/{}", written[0]));
    if status.exit_code != 134 || !named {
        failures.push(format!(
            "expected exit code 134, one core dump in the volume and its name in the log; got \
             exit code {}, {written:?}, stderr {stderr:?}",
            status.exit_code
        ));
    }
    let result = finish(pod, &[id], failures);
    std::fs::remove_dir_all(&dumps)?;
    result
}
