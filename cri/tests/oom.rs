//! A container over its memory limit (`resources.limits.memory`, CRI's
//! `LinuxContainerResources.memory_limit_in_bytes`) is killed by the kernel's OOM killer in its
//! cgroup, and ContainerStatus says so: exited, reason `OOMKilled` (what `kubectl describe`
//! and the kubelet's restart logic show), exit code 137. The demo's `grow MB` allocates and
//! touches MB MiB: Wasm (the module's linear memory, in the engine's process, is the
//! container's memory) and native. Under the limit, the same command completes: the limit is
//! what kills. runc is the reference.

use std::time::Duration;

use anyhow::{Result, ensure};
use cri_conformance::cases::{Kind, for_each_kind, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::Pod;
use k8s_cri::v1::ContainerState;

const LIMIT_MIB: i64 = 64;
/// Well over the limit.
const OVER_MIB: &str = "256";
/// Well under it, with room for the engine.
const UNDER_MIB: &str = "8";
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

check_on!(over_the_memory_limit_is_oom_killed: wasmtime, wamr, wasmedge, runc);

fn over_the_memory_limit_is_oom_killed(handler: &str) -> Result<()> {
    for_each_kind("oom", handler, |pod, kind, containers| {
        // Both runs, whatever the first gave.
        let mut failed = Vec::new();
        for (mb, reason, code) in [(UNDER_MIB, "Completed", 0), (OVER_MIB, "OOMKilled", 137)] {
            if let Err(e) = grow(pod, kind, mb, reason, code, containers) {
                failed.push(format!("`grow {mb}` with a {LIMIT_MIB} MiB limit: {e:#}"));
            }
        }
        ensure!(failed.is_empty(), "{}", failed.join("; "));
        Ok(())
    })
}

fn grow(
    pod: &mut Pod,
    kind: Kind,
    mb: &str,
    reason: &str,
    code: i32,
    containers: &mut Vec<String>,
) -> Result<()> {
    let name = format!("grow-{kind}-{mb}");
    let spec = kind
        .demo(&name, &["grow", mb])
        .memory_limit(LIMIT_MIB * 1024 * 1024);
    let id = pod.create_container(&spec)?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    let status = pod.wait_for_state(&id, ContainerState::ContainerExited, EXIT_TIMEOUT)?;
    let log = logged_output(&pod.log_path(&name)).unwrap_or_default();
    ensure!(
        status.reason == reason && status.exit_code == code,
        "expected reason {reason:?} and exit code {code}; saw reason {:?}, exit code {}, \
         message {:?}; stdout {:?}, stderr {:?}",
        status.reason,
        status.exit_code,
        status.message,
        log.0,
        log.1
    );
    Ok(())
}
