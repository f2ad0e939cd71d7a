//! Reaching pods from "the host". The pod network (bridge, pod IPs) lives in the private
//! containerd's network namespace, so a connection to a pod IP starts from a thread that
//! has joined that namespace: the rest of the test process stays on the real host network.

use std::fs::File;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use nix::sched::{CloneFlags, setns};
use shim_conformance::environment::containerd;

/// Runs `work` on a new thread inside containerd's network namespace and returns its result.
/// The thread ends with `work`, so the namespace switch never leaks to other code.
pub fn in_containerd_network<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/proc/{}/ns/net", containerd().pid());
    let namespace = File::open(&path).with_context(|| format!("cannot open {path}"))?;
    std::thread::spawn(move || {
        setns(&namespace, CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("cannot join the network namespace {path}"))?;
        work()
    })
    .join()
    .map_err(|_| anyhow!("the thread in containerd's network namespace panicked"))?
}

/// Opens a TCP connection to `ip:port` from containerd's network namespace, sends
/// `request`, and returns everything the peer sends until it closes the connection.
pub fn tcp_exchange(ip: &str, port: u16, request: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    use std::io::{Read, Write};
    let address: std::net::SocketAddr = format!("{ip}:{port}")
        .parse()
        .with_context(|| format!("{ip}:{port} is not a socket address"))?;
    let request = request.to_vec();
    in_containerd_network(move || {
        let mut stream = std::net::TcpStream::connect_timeout(&address, timeout)
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream
            .write_all(&request)
            .with_context(|| format!("cannot send to {address}"))?;
        stream.shutdown(std::net::Shutdown::Write)?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .with_context(|| format!("cannot read the answer of {address}"))?;
        Ok(answer)
    })
}
