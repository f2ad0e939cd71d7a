//! ReopenContainerLog, what the kubelet calls after it rotated a container's log: once the
//! log file was moved away, the call makes CRI create a new file at the log path, and what the
//! container prints from then on goes there, not to the old file (critest: "runtime should
//! support reopening container log"). The demo's `sleep` prints a line, sleeps, prints
//! another: the first goes to the moved file, the second to the new one. Wasm and native;
//! runc is the reference.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cri_conformance::cases::{Kind, for_each_kind, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::Pod;
use cri_conformance::streaming::reopen_container_log;
use k8s_cri::v1::ContainerState;

/// Long enough for the log to be moved and reopened between the two lines.
const SLEEP_SECS: u64 = 5;

check_on!(reopen_container_log_starts_a_new_file: wasmtime, wamr, wasmedge, runc);

fn reopen_container_log_starts_a_new_file(handler: &str) -> Result<()> {
    for_each_kind("reopen", handler, reopen_one)
}

fn reopen_one(pod: &mut Pod, kind: Kind, containers: &mut Vec<String>) -> Result<()> {
    let name = format!("reopen-{kind}");
    let secs = SLEEP_SECS.to_string();
    let id = pod.create_container(&kind.demo(&name, &["sleep", &secs]))?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    let path = pod.log_path(&name);
    let first = format!("sleeping {secs}\n");

    // The first line is in the log.
    let deadline = Instant::now() + Duration::from_secs(SLEEP_SECS - 2);
    loop {
        let logged = logged_output(&path).map(|(stdout, _)| stdout);
        if logged.as_deref().is_ok_and(|stdout| stdout == first) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the log {} did not show {first:?} within {:?} of the start; saw {logged:?}",
                path.display(),
                Duration::from_secs(SLEEP_SECS - 2)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let rotated = path.with_extension("log.1");
    std::fs::rename(&path, &rotated)
        .with_context(|| format!("cannot move {} away", path.display()))?;
    reopen_container_log(pod, &id)?;
    ensure!(
        path.exists(),
        "ReopenContainerLog answered but there is no new file at {}",
        path.display()
    );
    let status = pod.container_status(&id)?;
    ensure!(
        status.state == ContainerState::ContainerRunning as i32,
        "the container ended before its log was reopened (sleep {secs} too short?): {status:?}"
    );

    pod.wait_for_state(
        &id,
        ContainerState::ContainerExited,
        Duration::from_secs(SLEEP_SECS + 20),
    )?;
    let (new, _) = logged_output(&path)?;
    let (old, _) = logged_output(&rotated)?;
    ensure!(
        new == "slept\n" && old == first,
        "expected the new log at {} to hold \"slept\\n\" and the moved one {first:?}; saw \
         {new:?} and {old:?}",
        path.display()
    );
    Ok(())
}
