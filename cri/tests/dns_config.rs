//! The pod's DNS configuration (`dnsConfig` with `dnsPolicy: None`): the kubelet hands the
//! servers, search domains and options to RunPodSandbox, containerd writes them to the pod's
//! resolv.conf, and every container of the pod sees them as /etc/resolv.conf: the Wasm demo
//! (which reads it through the rootfs preopened as `/`) and the native one, in the init
//! process and in an ExecSync. runc is the reference.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use cri_conformance::cases::{Kind, finish, kinds, logged_output};
use cri_conformance::check_on;
use cri_conformance::pod::{Pod, PodOptions};
use k8s_cri::v1::{ContainerState, DnsConfig};

const START_TIMEOUT: Duration = Duration::from_secs(20);

check_on!(dns_config_is_the_containers_resolv_conf: wasmtime, wamr, wasmedge, runc);

/// The pod's DNS configuration. Nothing resolves names in the tests: the server is never
/// asked (and is on loopback).
fn dns() -> DnsConfig {
    DnsConfig {
        servers: vec!["127.0.0.53".to_owned(), "127.0.0.54".to_owned()],
        searches: vec![
            "pods.wasm-shims.test".to_owned(),
            "wasm-shims.test".to_owned(),
        ],
        options: vec!["ndots:3".to_owned(), "timeout:2".to_owned()],
    }
}

/// The lines the resolv.conf must have (containerd 1.6 writes these, in this order).
const EXPECTED_LINES: [&str; 4] = [
    "search pods.wasm-shims.test wasm-shims.test",
    "nameserver 127.0.0.53",
    "nameserver 127.0.0.54",
    "options ndots:3 timeout:2",
];

fn check_resolv_conf(what: &str, code: i32, stdout: &str, stderr: &str) -> Result<()> {
    let lines: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ensure!(
        code == 0 && lines == EXPECTED_LINES,
        "{what}: expected exit code 0 and the lines {EXPECTED_LINES:?}; saw exit code {code}, \
         lines {lines:?}, stderr {stderr:?}"
    );
    Ok(())
}

fn dns_config_is_the_containers_resolv_conf(handler: &str) -> Result<()> {
    let options = PodOptions {
        dns: Some(dns()),
        ..Default::default()
    };
    let mut pod = Pod::run_with(&format!("dns-{handler}"), handler, &options)?;
    let mut containers = Vec::new();
    let mut failures = Vec::new();
    for kind in kinds(handler) {
        if let Err(e) = init_sees_resolv_conf(&mut pod, *kind, &mut containers) {
            failures.push(format!("{kind} init: {e:#}"));
        }
        if let Err(e) = exec_sees_resolv_conf(&mut pod, *kind, &mut containers) {
            failures.push(format!("{kind} exec: {e:#}"));
        }
    }
    finish(pod, &containers, failures)
}

fn init_sees_resolv_conf(pod: &mut Pod, kind: Kind, containers: &mut Vec<String>) -> Result<()> {
    let name = format!("dns-{kind}-init");
    let id = pod.create_container(&kind.demo(&name, &["cat", "/etc/resolv.conf"]))?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    let status = pod.wait_for_state(&id, ContainerState::ContainerExited, START_TIMEOUT)?;
    let (stdout, stderr) = logged_output(&pod.log_path(&name))?;
    check_resolv_conf(
        "`cat /etc/resolv.conf` as the container",
        status.exit_code,
        &stdout,
        &stderr,
    )
}

fn exec_sees_resolv_conf(pod: &mut Pod, kind: Kind, containers: &mut Vec<String>) -> Result<()> {
    let name = format!("dns-{kind}-exec");
    let id = pod.create_container(&kind.demo(&name, &["sleep", "600"]))?;
    containers.push(id.clone());
    pod.start_container(&id)?;
    pod.wait_for_state(&id, ContainerState::ContainerRunning, START_TIMEOUT)?;
    let cmd = [kind.program(), "cat", "/etc/resolv.conf"];
    let response = pod
        .exec_sync(&id, &cmd, 10)
        .map_err(|s| anyhow!("ExecSync {cmd:?}: {:?}: {}", s.code(), s.message()))
        .context("ExecSync")?;
    check_resolv_conf(
        "ExecSync `cat /etc/resolv.conf`",
        response.exit_code,
        &String::from_utf8_lossy(&response.stdout),
        &String::from_utf8_lossy(&response.stderr),
    )
}
