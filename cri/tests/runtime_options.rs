//! The `options` table of a runtime in containerd's config reaches the shim, on every
//! containerd: the handler `wasmtime-limited` (scripts/containerd.sh) gives its containers a
//! deadline of 1 s and memories of at most 32 MiB, in the table itself on containerd 1.7
//! (config version 2) and 2.x (version 3), through the file the table's `ConfigPath` names on
//! 1.6 (whose CRI plugin sends no table body). A container's annotation overrides a default.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use cri_conformance::logs;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::ContainerState;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `spec` to its exit; its exit code and its log's stderr lines.
fn run_to_exit(pod: &mut Pod, spec: &ContainerSpec) -> Result<(i32, Vec<String>)> {
    let id = pod.run_container(spec)?;
    let status = pod.wait_for_state(&id, ContainerState::ContainerExited, TIMEOUT)?;
    let path = pod.log_path(&spec.name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read the log of {}", spec.name))?;
    let stderr = logs::parse(&text)?
        .into_iter()
        .filter(|entry| entry.stream == "stderr")
        .map(|entry| entry.content)
        .collect();
    Ok((status.exit_code, stderr))
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn the_runtime_options_table_reaches_the_shim() -> Result<()> {
    let mut pod = Pod::run("options", "wasmtime-limited")?;
    let deadline = |seconds: &str, stderr: &[String]| {
        stderr
            .iter()
            .any(|line| line.starts_with(&format!("deadline of {seconds} exceeded")))
    };

    let (code, stderr) = run_to_exit(&mut pod, &ContainerSpec::wasm("looping", &["loop"]))?;
    ensure!(
        code == 124 && deadline("1s", &stderr),
        "the option Deadline = \"1s\": exit code {code}, stderr {stderr:?}"
    );

    let longer =
        ContainerSpec::wasm("longer", &["loop"]).annotation("io.containerd.wasm.deadline", "2s");
    let (code, stderr) = run_to_exit(&mut pod, &longer)?;
    ensure!(
        code == 124 && deadline("2s", &stderr),
        "the annotation over the option: exit code {code}, stderr {stderr:?}"
    );

    let (code, stderr) = run_to_exit(&mut pod, &ContainerSpec::wasm("growing", &["grow", "64"]))?;
    ensure!(
        code == 134 && stderr.iter().any(|line| line.contains("memory allocation")),
        "the option MaxMemory = \"32M\": exit code {code}, stderr {stderr:?}"
    );

    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}
