//! A Spin app in a pod as SpinKube runs one: the handler `spin` (RuntimeClass
//! wasmtime-spin-v2, runtime `io.containerd.spin.v2`), the container's command `/`, the app
//! listening on port 80 of the pod (`SPIN_HTTP_LISTEN_ADDR`'s default); beside it a native
//! sidecar, as a Deployment's extra container would be, run by the same shim.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cri_conformance::images::{SPIN_HELLO, SPIN_HELLO_OCI, TCP_ECHO_NATIVE};
use cri_conformance::network::{in_containerd_network, tcp_exchange};
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::ContainerState;

/// How long the app and the sidecar may take to come up (the first start compiles).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET path` at `ip:port` from containerd's network namespace, with `Connection: close`:
/// the whole response as text.
fn http_get(ip: &str, port: u16, path: &str) -> Result<String> {
    let address: std::net::SocketAddr = format!("{ip}:{port}").parse()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {ip}\r\nconnection: close\r\n\r\n");
    in_containerd_network(move || {
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .with_context(|| format!("cannot read the answer of {address}"))?;
        Ok(answer)
    })
}

/// The seed's app (container `app`, named `name` in the pod) answers `GET /hello` at `ip:80`
/// before `deadline`.
fn expect_hello(pod: &mut Pod, app: &str, name: &str, ip: &str, deadline: Instant) -> Result<()> {
    let answer = loop {
        match http_get(ip, 80, "/hello") {
            Ok(answer) => break answer,
            Err(e) if Instant::now() < deadline => {
                let status = pod.container_status(app)?;
                if status.state != ContainerState::ContainerRunning as i32 {
                    let log = std::fs::read_to_string(pod.log_path(name)).unwrap_or_default();
                    bail!(
                        "the app exited with {} ({}) before answering: {e:#}; its log: {log:?}",
                        status.exit_code,
                        status.reason
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e.context(format!("the app did not answer on {ip}:80"))),
        }
    };
    // The body may come chunked: it is looked for, not compared whole.
    ensure!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("\r\nHello from Wasm on Kubernetes!"),
        "GET /hello at {ip}:80 answered {answer:?}"
    );
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn a_spin_app_serves_at_the_pod_ip_beside_a_native_sidecar() -> Result<()> {
    let mut pod = Pod::run("spin-app", "spin")?;
    let ip = pod.ip()?;
    let app = pod.run_container(&ContainerSpec::new("spin-hello", &SPIN_HELLO, &["/"]))?;
    let sidecar = pod.run_container(&ContainerSpec::new("sidecar", &TCP_ECHO_NATIVE, &["8081"]))?;
    pod.wait_for_state(&app, ContainerState::ContainerRunning, START_TIMEOUT)?;
    pod.wait_for_state(&sidecar, ContainerState::ContainerRunning, START_TIMEOUT)?;

    let deadline = Instant::now() + START_TIMEOUT;
    expect_hello(&mut pod, &app, "spin-hello", &ip, deadline)?;
    // The sidecar may still be opening its listener: it gets until the same deadline.
    let echo = loop {
        match tcp_exchange(&ip, 8081, b"ping", Duration::from_secs(5)) {
            Ok(echo) => break echo,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e.context(format!("the sidecar did not answer on {ip}:8081"))),
        }
    };
    ensure!(
        echo == b"echo: ping",
        "the sidecar answered {:?}",
        String::from_utf8_lossy(&echo)
    );
    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}

/// The seed's app as a Spin OCI artifact, the form a SpinApp usually names: containerd 1.7 and
/// 2.x leave its layers packed and the shim reads them; containerd 1.6 cannot import it.
#[test]
#[ignore = "needs the private containerd: run make test"]
fn a_spin_oci_artifact_serves_in_a_pod() -> Result<()> {
    if std::env::var("WASM_SHIMS_CONTAINERD_VERSION").is_ok_and(|v| v.starts_with("1.6.")) {
        let Err(e) = SPIN_HELLO_OCI.ensure_imported() else {
            bail!("containerd 1.6 imported and unpacked a Spin artifact");
        };
        let message = format!("{e:#}");
        ensure!(
            message.contains("mismatched image rootfs and manifest layers"),
            "containerd 1.6 refused the artifact otherwise: {message}"
        );
        return Ok(());
    }
    let mut pod = Pod::run("spin-oci", "spin")?;
    let ip = pod.ip()?;
    let app = pod.run_container(&ContainerSpec::new(
        "spin-hello-oci",
        &SPIN_HELLO_OCI,
        &["/"],
    ))?;
    pod.wait_for_state(&app, ContainerState::ContainerRunning, START_TIMEOUT)?;
    expect_hello(
        &mut pod,
        &app,
        "spin-hello-oci",
        &ip,
        Instant::now() + START_TIMEOUT,
    )?;
    pod.stop().context("StopPodSandbox")?;
    pod.remove().context("RemovePodSandbox")?;
    Ok(())
}
