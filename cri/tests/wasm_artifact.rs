//! A pod running a Wasm OCI artifact (the module is the image's one layer, not a tar): the
//! kubelet's path to the shim's content-store reading. containerd 1.6.20 cannot unpack such an
//! image at all; 1.7 and 2.x leave the layer packed and the shim reads it.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use cri_conformance::cases::{finish, logged_output};
use cri_conformance::images::WASI_DEMO_APP_ARTIFACT;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::ContainerState;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

fn containerd_before_1_7() -> bool {
    std::env::var("WASM_SHIMS_CONTAINERD_VERSION").is_ok_and(|v| v.starts_with("1.6."))
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn a_pod_runs_a_wasm_artifact() -> Result<()> {
    if containerd_before_1_7() {
        let Err(e) = WASI_DEMO_APP_ARTIFACT.ensure_imported() else {
            bail!("containerd 1.6 imported and unpacked a Wasm artifact");
        };
        let message = format!("{e:#}");
        ensure!(
            message.contains("mismatched image rootfs and manifest layers"),
            "containerd 1.6 refused the artifact otherwise: {message}"
        );
        return Ok(());
    }
    for handler in cri_conformance::HANDLERS {
        if cri_conformance::skipped(handler) {
            continue;
        }
        let mut pod = Pod::run(&format!("artifact-{handler}"), handler)?;
        // No args: the image names no entry point, so its one module runs.
        let spec = ContainerSpec::new("app", &WASI_DEMO_APP_ARTIFACT, &[]);
        let id = pod.run_container(&spec)?;
        let status = pod.wait_for_state(&id, ContainerState::ContainerExited, EXIT_TIMEOUT)?;
        let (stdout, _) = logged_output(&pod.log_path("app"))?;
        let mut failures = Vec::new();
        if status.exit_code != 0 || stdout != "hello from wasi-demo-app\n" {
            failures.push(format!(
                "exit code {} ({}), stdout {stdout:?}",
                status.exit_code, status.message
            ));
        }
        finish(pod, &[id], failures)?;
    }
    Ok(())
}
