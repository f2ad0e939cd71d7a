//! Host ports (`ports[].hostPort` of a Kubernetes container): RunPodSandbox hands the pod's
//! port mappings to CNI's portmap plugin, and a connection to 127.0.0.1:<hostPort> on the
//! node reaches the container's listener. The node here is the private containerd's network
//! namespace (where portmap's rules live), so the connection starts from a thread in it. The
//! listener is the TCP echo, Wasm (a wasip2 component: not on WAMR, which runs no components)
//! and native; runc is the reference.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cri_conformance::cases::{Kind, conclude, finish, listener_kinds};
use cri_conformance::check_on;
use cri_conformance::network::{in_containerd_network, tcp_exchange};
use cri_conformance::pod::{Pod, PodOptions};
use k8s_cri::v1::{ContainerState, PortMapping, Protocol};

/// How long the listener may take to come up after the container started.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// The port the listeners listen on in their pod.
const CONTAINER_PORT: u16 = 8080;

/// Held while a pod with a host port starts. CNI's portmap plugin makes its shared
/// CNI-HOSTPORT-* chains by looking for them and then creating them, so two first pods that
/// start at once race, and the loser fails with "CHAIN_USER_ADD failed (File exists)" (seen
/// on containerd 2.1 here). Kubelet would retry that sandbox on its next sync; the tests, which
/// start their pods at once on purpose, take turns instead.
static HOST_PORT_SETUP: Mutex<()> = Mutex::new(());

check_on!(host_port_reaches_the_listener: wasmtime, wamr, wasmedge, runc);

/// A host port per handler and kind: the tests run at once, on one node.
fn host_port(handler: &str, kind: Kind) -> u16 {
    let handler = match handler {
        "wasmtime" => 0,
        "wamr" => 1,
        "wasmedge" => 2,
        _ => 3,
    };
    30080 + handler * 2 + u16::from(kind == Kind::Native)
}

fn host_port_reaches_the_listener(handler: &str) -> Result<()> {
    let mut failures = Vec::new();
    // One pod per kind: both listeners use the same container port.
    for kind in listener_kinds(handler) {
        if let Err(e) = listener_behind_host_port(handler, *kind) {
            failures.push(format!("{kind}: {e:#}"));
        }
    }
    conclude(handler, &failures)
}

fn listener_behind_host_port(handler: &str, kind: Kind) -> Result<()> {
    let host_port = host_port(handler, kind);
    let options = PodOptions {
        port_mappings: vec![PortMapping {
            protocol: Protocol::Tcp as i32,
            container_port: i32::from(CONTAINER_PORT),
            host_port: i32::from(host_port),
            host_ip: String::new(),
        }],
        ..Default::default()
    };
    let mut pod = {
        let _turn = HOST_PORT_SETUP.lock().unwrap_or_else(|e| e.into_inner());
        Pod::run_with(&format!("hostport-{handler}-{kind}"), handler, &options)?
    };
    let mut failures = Vec::new();
    let name = format!("listener-{kind}");
    let id = pod.run_container(&kind.listener(&name, CONTAINER_PORT))?;
    if let Err(e) = exchange_through_host_port(&mut pod, &id, &name, host_port) {
        failures.push(format!("{e:#}"));
    }
    let rules = host_port_rules(host_port)?;
    if rules.is_empty() {
        failures.push(format!(
            "no NAT rule of the running pod names host port {host_port}: the check of its \
             removal below would mean nothing"
        ));
    }
    finish(pod, &[id], failures)?;
    // StopPodSandbox removed the pod's portmap rules (the shared CNI-HOSTPORT-* chains stay).
    let rules = host_port_rules(host_port)?;
    if !rules.is_empty() {
        bail!("the removed pod left its host port NAT rules behind: {rules:#?}");
    }
    Ok(())
}

/// The NAT rules in containerd's network namespace that name `--dport <host_port>`.
fn host_port_rules(host_port: u16) -> Result<Vec<String>> {
    let rules = in_containerd_network(|| {
        let output = Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .context("cannot run iptables -t nat -S")?;
        ensure!(
            output.status.success(),
            "iptables -t nat -S failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    })?;
    let port = format!("--dport {host_port}");
    Ok(rules
        .lines()
        .filter(|rule| {
            rule.split(" -")
                .any(|part| format!("-{part}").trim_end() == port)
        })
        .map(str::to_owned)
        .collect())
}

fn exchange_through_host_port(pod: &mut Pod, id: &str, name: &str, host_port: u16) -> Result<()> {
    pod.wait_for_state(id, ContainerState::ContainerRunning, LISTEN_TIMEOUT)?;
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let answer = loop {
        match tcp_exchange("127.0.0.1", host_port, b"ping", Duration::from_secs(5)) {
            // Before the listener is up, portmap's DNAT leads to a refused connection, or to
            // an accepted and closed one on no listener: retry on both.
            Ok(answer) if !answer.is_empty() => break answer,
            result => {
                let status = pod.container_status(id)?;
                if status.state != ContainerState::ContainerRunning as i32 {
                    let log = std::fs::read_to_string(pod.log_path(name)).unwrap_or_default();
                    bail!(
                        "{name} exited with {} ({}) before answering on host port {host_port}; \
                         its log: {log:?}",
                        status.exit_code,
                        status.reason
                    );
                }
                if Instant::now() > deadline {
                    let seen = match result {
                        Ok(answer) => format!("the answer {:?}", String::from_utf8_lossy(&answer)),
                        Err(e) => format!("{e:#}"),
                    };
                    return Err(anyhow::anyhow!(
                        "{name} did not answer at 127.0.0.1:{host_port} (host port -> container \
                         port {CONTAINER_PORT}) within {LISTEN_TIMEOUT:?}; last: {seen}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let answer = String::from_utf8_lossy(&answer);
    if answer != "echo: ping" {
        bail!("127.0.0.1:{host_port} answered {answer:?}, expected \"echo: ping\"");
    }
    // A port nobody mapped is refused: the answer above came through the mapping.
    let unmapped = host_port + 1000;
    if let Ok(answer) = tcp_exchange("127.0.0.1", unmapped, b"ping", Duration::from_secs(5)) {
        bail!(
            "127.0.0.1:{unmapped}, a port no pod maps, answered {:?}: the check cannot tell a \
             host port from something else listening",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(())
}
