//! The runtime as the kubelet first sees it: Version and Status.

use anyhow::{Result, ensure};
use cri_conformance::client::{CALL_TIMEOUT, Cri, named};
use k8s_cri::v1::{StatusRequest, VersionRequest};
use shim_conformance::environment::containerd;

#[test]
#[ignore = "needs the private containerd: run make test"]
fn version_names_containerd_and_cri_v1() -> Result<()> {
    let mut cri = Cri::connect(&containerd().address)?;
    let request = VersionRequest {
        version: "v1".into(),
    };
    let version = named(
        "Version",
        cri.runtime(
            CALL_TIMEOUT,
            |mut c| async move { c.version(request).await },
        ),
    )?;
    ensure!(
        version.runtime_name == "containerd",
        "runtime name {:?}",
        version.runtime_name
    );
    ensure!(
        version.runtime_api_version == "v1",
        "runtime API version {:?}, expected v1",
        version.runtime_api_version
    );
    ensure!(!version.runtime_version.is_empty(), "no runtime version");
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn status_reports_runtime_and_network_ready() -> Result<()> {
    let mut cri = Cri::connect(&containerd().address)?;
    let request = StatusRequest { verbose: true };
    let response = named(
        "Status",
        cri.runtime(CALL_TIMEOUT, |mut c| async move { c.status(request).await }),
    )?;
    let status = response
        .status
        .ok_or_else(|| anyhow::anyhow!("Status answered without a status"))?;
    for wanted in ["RuntimeReady", "NetworkReady"] {
        let condition = status
            .conditions
            .iter()
            .find(|c| c.r#type == wanted)
            .ok_or_else(|| anyhow::anyhow!("no {wanted} condition in {:?}", status.conditions))?;
        ensure!(
            condition.status,
            "{wanted} is false: {} {}",
            condition.reason,
            condition.message
        );
    }
    // The verbose config shows the runtime handlers a RuntimeClass can name.
    let config = response
        .info
        .get("config")
        .map(String::as_str)
        .unwrap_or("");
    for handler in cri_conformance::HANDLERS {
        ensure!(
            config.contains(&format!("io.containerd.{handler}.v1")),
            "the CRI config has no runtime handler for io.containerd.{handler}.v1: {config}"
        );
    }
    Ok(())
}
