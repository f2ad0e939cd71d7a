//! PortForward (`kubectl port-forward`), as critest's "runtime should support portforward"
//! checks it: CRI PortForward answers a streaming URL for the pod, and a stream opened there
//! for a container port is connected by containerd to that port inside the pod's network
//! namespace (`localhost:<port>`, where the container listens). The listener is the TCP
//! echo, Wasm (a wasip2 component: not on WAMR, which runs no components) and native; runc is
//! the reference. A port nobody listens on is the control: its stream reports the refused
//! connection on its error channel.
//!
//! The echo answers when its peer has shut down its sending side; containerd 1.6 never
//! passes a half-close of the forwarded stream on to the connection (it closes the connection
//! a second after the stream ends), so no answer can come back through the stream from this
//! listener: what is checked is that the forwarded connection is made and stays up, and that
//! the data is accepted.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use cri_conformance::cases::{Kind, conclude, finish, listener_kinds};
use cri_conformance::check_on;
use cri_conformance::network::tcp_exchange;
use cri_conformance::pod::Pod;
use cri_conformance::streaming::{self, ChannelStream, Collected};
use k8s_cri::v1::ContainerState;

const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
const PORT: u16 = 8080;
/// Nothing listens there.
const CLOSED_PORT: u16 = 8089;
/// A port-forward stream's channels: data, then error.
const DATA: u8 = 0;
const ERROR: u8 = 1;

check_on!(port_forward_reaches_the_listener: wasmtime, wamr, wasmedge, runc);

fn port_forward_reaches_the_listener(handler: &str) -> Result<()> {
    let mut failures = Vec::new();
    for kind in listener_kinds(handler) {
        if let Err(e) = forward_to(handler, *kind) {
            failures.push(format!("{kind}: {e:#}"));
        }
    }
    conclude(handler, &failures)
}

fn forward_to(handler: &str, kind: Kind) -> Result<()> {
    let mut pod = Pod::run(&format!("portforward-{handler}-{kind}"), handler)?;
    let name = format!("listener-{kind}");
    let id = pod.run_container(&kind.listener(&name, PORT))?;
    let mut failures = Vec::new();
    if let Err(e) = wait_listening(&mut pod, &id, &name) {
        failures.push(format!("{e:#}"));
    } else {
        for (port, listening) in [(PORT, true), (CLOSED_PORT, false)] {
            if let Err(e) = forward_one(&mut pod, port, listening) {
                failures.push(format!("port {port}: {e:#}"));
            }
        }
    }
    finish(pod, &[id], failures)
}

/// Waits until the listener answers at the pod IP.
fn wait_listening(pod: &mut Pod, id: &str, name: &str) -> Result<()> {
    pod.wait_for_state(id, ContainerState::ContainerRunning, LISTEN_TIMEOUT)?;
    let ip = pod.ip()?;
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        match tcp_exchange(&ip, PORT, b"ping", Duration::from_secs(5)) {
            Ok(answer) if answer == b"echo: ping" => return Ok(()),
            result => {
                if Instant::now() > deadline {
                    bail!(
                        "{name} did not answer at the pod IP {ip}:{PORT} within \
                         {LISTEN_TIMEOUT:?}: {result:?}"
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn forward_one(pod: &mut Pod, port: u16, listening: bool) -> Result<()> {
    let url = streaming::port_forward_url(pod, port)?;
    ensure!(
        url.starts_with("http://") && url.contains("/portforward/"),
        "PortForward answered the URL {url:?}, expected http://<streaming server>/portforward/<token>"
    );
    let mut stream = ChannelStream::connect(&format!("{url}?port={port}"))?;
    // Each channel starts with the port it is for (2 bytes, little-endian).
    let header = port.to_le_bytes().to_vec();
    let opened = stream.collect_until(Duration::from_secs(5), |c| c.messages.len() >= 2)?;
    ensure!(
        opened.channels.get(&DATA) == Some(&header) && opened.channels.get(&ERROR) == Some(&header),
        "expected the data and error channels to start with the port {header:?}; saw {opened:?}"
    );
    stream.send(DATA, b"ping")?;
    // containerd dials the port when the stream opens; a refused connection shows at once.
    let seen = stream.collect_until(Duration::from_secs(3), |c| !c.text(ERROR).is_empty())?;
    stream.close();
    check_forward(port, listening, &seen)
}

fn check_forward(port: u16, listening: bool, seen: &Collected) -> Result<()> {
    let error = seen.text(ERROR);
    if listening {
        ensure!(
            error.is_empty() && !seen.closed,
            "expected the forwarded connection to localhost:{port} in the pod to be made and \
             kept; saw error {error:?}, stream closed: {}, data {:?}",
            seen.closed,
            seen.text(DATA)
        );
        // An answer may only be the echo's (none is expected, see the module's comment).
        let data = seen.text(DATA);
        ensure!(
            data.is_empty() || data == "echo: ping",
            "the forwarded stream sent {data:?}, expected nothing or \"echo: ping\""
        );
    } else {
        ensure!(
            error.contains(&format!("localhost:{port}")),
            "expected an error about localhost:{port} (nothing listens there) on the error \
             channel; saw error {error:?}, data {:?}, stream closed: {}",
            seen.text(DATA),
            seen.closed
        );
    }
    Ok(())
}
