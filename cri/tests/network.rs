//! The pod network applies to Wasm modules: a module listening on TCP in the pod is reached
//! from the node at the pod IP (the shim puts it in the pod's network namespace, which the
//! pause container holds). The same listener built natively, as a sidecar, is the reference.
//!
//! The listener is `test-images/tcp-echo`, a wasm32-wasip2 component: WASI preview 1 cannot
//! open a listening socket (it can only accept on sockets the host preopened), so the shim
//! runs it as a preview 2 component with wasi:sockets, which it grants to containers that
//! are allowed the network (annotation `io.containerd.wasm.network=allow`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cri_conformance::images::{TCP_ECHO, TCP_ECHO_NATIVE};
use cri_conformance::network::tcp_exchange;
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::ContainerState;

/// `containerd_shim_wasm::NETWORK_ANNOTATION`: gives the module the network.
const NETWORK_ANNOTATION: &str = "io.containerd.wasm.network";
/// How long the listener may take to come up after the container started.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `spec` (a tcp-echo on `port`) in a pod and talks to it at the pod IP.
fn listener_answers_at_the_pod_ip(spec: ContainerSpec, port: u16) -> Result<()> {
    let mut pod = Pod::run(&format!("tcp-{}", spec.name), "wasmtime")?;
    let ip = pod.ip()?;
    let id = pod.run_container(&spec)?;
    pod.wait_for_state(&id, ContainerState::ContainerRunning, LISTEN_TIMEOUT)?;

    // Connect until the listener is up (or the container gave up).
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let answer = loop {
        match tcp_exchange(&ip, port, b"ping", Duration::from_secs(5)) {
            Ok(answer) => break answer,
            Err(e) => {
                let status = pod.container_status(&id)?;
                if status.state != ContainerState::ContainerRunning as i32 {
                    let log = std::fs::read_to_string(pod.log_path(&spec.name)).unwrap_or_default();
                    bail!(
                        "{} exited with {} ({}) before answering on {ip}:{port}; its log: {log:?}",
                        spec.name,
                        status.exit_code,
                        status.reason
                    );
                }
                if Instant::now() > deadline {
                    return Err(e.context(format!(
                        "{} did not answer on {ip}:{port} within {LISTEN_TIMEOUT:?}",
                        spec.name
                    )));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let answer = String::from_utf8_lossy(&answer);
    if answer != "echo: ping" {
        bail!(
            "{} at {ip}:{port} answered {answer:?}, expected \"echo: ping\"",
            spec.name
        );
    }
    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn native_sidecar_listener_is_reached_at_the_pod_ip() -> Result<()> {
    listener_answers_at_the_pod_ip(
        ContainerSpec::new("native-listener", &TCP_ECHO_NATIVE, &["8081"]),
        8081,
    )
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn wasm_listener_is_reached_at_the_pod_ip() -> Result<()> {
    let spec = ContainerSpec::new("wasm-listener", &TCP_ECHO, &["8080"])
        .annotation(NETWORK_ANNOTATION, "allow");
    listener_answers_at_the_pod_ip(spec, 8080)
        .context("the Wasm listener: a wasm32-wasip2 component with wasi:sockets")
}
