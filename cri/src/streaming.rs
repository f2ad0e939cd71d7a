//! CRI's streaming calls. Attach and PortForward (like Exec) answer only a URL on containerd's
//! streaming server (`http://127.0.0.1:<port>/<attach|portforward>/<token>`, on loopback in
//! containerd's network namespace); the client (the API server, for `kubectl attach` and
//! `kubectl port-forward`) then opens a stream there. The server speaks SPDY and WebSocket;
//! this client speaks WebSocket with Kubernetes' channel protocol `v4.channel.k8s.io`: every
//! binary message starts with one byte, the channel it belongs to (attach: 0 stdin, 1 stdout,
//! 2 stderr, 3 error, 4 resize; port forward: 2 per port, data then error).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use k8s_cri::v1::{AttachRequest, PortForwardRequest, ReopenContainerLogRequest};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, http::HeaderValue};

use crate::client::{CALL_TIMEOUT, named};
use crate::network::in_containerd_network;
use crate::pod::Pod;

/// The channel protocol the kubelet's streaming server (containerd 1.6's copy) offers over
/// WebSocket, binary frames.
pub const CHANNEL_PROTOCOL: &str = "v4.channel.k8s.io";

/// Attach's channels.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;

/// CRI Attach to container `id` with stdin, stdout and stderr, no TTY (what `kubectl attach
/// -i` asks for a container without `tty`): the streaming URL.
pub fn attach_url(pod: &mut Pod, id: &str) -> Result<String> {
    let request = AttachRequest {
        container_id: id.to_owned(),
        stdin: true,
        tty: false,
        stdout: true,
        stderr: true,
    };
    let response = named(
        &format!("Attach {id}"),
        pod.cri()
            .runtime(CALL_TIMEOUT, |mut c| async move { c.attach(request).await }),
    )?;
    Ok(response.url)
}

/// CRI PortForward to `port` of the pod: the streaming URL.
pub fn port_forward_url(pod: &mut Pod, port: u16) -> Result<String> {
    let request = PortForwardRequest {
        pod_sandbox_id: pod.id.clone(),
        port: vec![i32::from(port)],
    };
    let response = named(
        &format!("PortForward {} port {port}", pod.id),
        pod.cri().runtime(CALL_TIMEOUT, |mut c| async move {
            c.port_forward(request).await
        }),
    )?;
    Ok(response.url)
}

/// CRI ReopenContainerLog: what the kubelet calls after rotating a container's log.
pub fn reopen_container_log(pod: &mut Pod, id: &str) -> Result<()> {
    let request = ReopenContainerLogRequest {
        container_id: id.to_owned(),
    };
    named(
        &format!("ReopenContainerLog {id}"),
        pod.cri().runtime(CALL_TIMEOUT, |mut c| async move {
            c.reopen_container_log(request).await
        }),
    )?;
    Ok(())
}

/// The loopback address and port of a streaming URL (`http://127.0.0.1:PORT/...`). Anything
/// but loopback is refused: the suite talks to nothing outside the namespaces it made.
fn loopback_address(url: &str) -> Result<(SocketAddr, &str)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("the streaming URL {url:?} is not http://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let address: SocketAddr = authority
        .parse()
        .with_context(|| format!("the streaming URL {url:?} has no IP:port"))?;
    ensure!(
        address.ip().is_loopback(),
        "the streaming URL {url:?} is not on loopback: the suite does not connect there"
    );
    Ok((address, path))
}

/// A WebSocket stream to containerd's streaming server.
pub struct ChannelStream {
    socket: WebSocket<TcpStream>,
    url: String,
}

impl ChannelStream {
    /// Opens the stream of `url` (a URL that CRI answered, plus any query), from containerd's
    /// network namespace where the server listens.
    pub fn connect(url: &str) -> Result<Self> {
        let (address, path) = loopback_address(url)?;
        let tcp = in_containerd_network(move || {
            TcpStream::connect_timeout(&address, Duration::from_secs(10))
                .with_context(|| format!("cannot connect to the streaming server at {address}"))
        })?;
        let mut request = format!("ws://{address}{path}")
            .into_client_request()
            .with_context(|| format!("{url:?} does not make a WebSocket request"))?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(CHANNEL_PROTOCOL),
        );
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let (socket, response) = tungstenite::client::client(request, tcp)
            .map_err(|e| anyhow!("WebSocket handshake with {url} failed: {e}"))?;
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok());
        ensure!(
            protocol == Some(CHANNEL_PROTOCOL),
            "the streaming server at {url} chose the protocol {protocol:?}, expected {CHANNEL_PROTOCOL:?}"
        );
        Ok(Self {
            socket,
            url: url.to_owned(),
        })
    }

    /// Sends `data` on `channel`.
    pub fn send(&mut self, channel: u8, data: &[u8]) -> Result<()> {
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(channel);
        frame.extend_from_slice(data);
        self.socket
            .send(Message::binary(frame))
            .with_context(|| format!("cannot send on channel {channel} of {}", self.url))
    }

    /// The next message, as (channel, data), waiting at most `timeout`: `Ok(None)` when the
    /// server closed the stream or nothing came in time (`closed` tells which).
    pub fn receive(&mut self, timeout: Duration) -> Result<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Received::Nothing);
            }
            self.socket.get_mut().set_read_timeout(Some(left))?;
            match self.socket.read() {
                Ok(Message::Binary(data)) => {
                    let Some((channel, data)) = data.split_first() else {
                        continue;
                    };
                    return Ok(Received::Message(*channel, data.to_vec()));
                }
                Ok(Message::Close(_)) => return Ok(Received::Closed),
                Ok(other) => bail!("{} sent a message that is not binary: {other:?}", self.url),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(Received::Nothing);
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(Received::Closed);
                }
                Err(e) => return Err(anyhow!("reading the stream of {} failed: {e}", self.url)),
            }
        }
    }

    /// Everything received on each channel until `done` holds for it, the server closes the
    /// stream, or `timeout` is over.
    pub fn collect_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Collected) -> bool,
    ) -> Result<Collected> {
        let deadline = Instant::now() + timeout;
        let mut collected = Collected::default();
        while !done(&collected) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receive(left)? {
                Received::Message(channel, data) => collected.add(channel, &data),
                Received::Closed => {
                    collected.closed = true;
                    break;
                }
                Received::Nothing => break,
            }
        }
        Ok(collected)
    }

    /// Closes the stream (a client going away).
    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }
}

/// One read of a [`ChannelStream`].
#[derive(Debug)]
pub enum Received {
    Message(u8, Vec<u8>),
    Closed,
    Nothing,
}

/// What came in on each channel, in order, and how many messages.
#[derive(Debug, Default, Clone)]
pub struct Collected {
    pub channels: std::collections::BTreeMap<u8, Vec<u8>>,
    pub messages: Vec<(u8, usize)>,
    pub closed: bool,
}

impl Collected {
    fn add(&mut self, channel: u8, data: &[u8]) {
        self.channels
            .entry(channel)
            .or_default()
            .extend_from_slice(data);
        self.messages.push((channel, data.len()));
    }

    /// The bytes of `channel`, as text.
    pub fn text(&self, channel: u8) -> String {
        self.channels
            .get(&channel)
            .map(|data| String::from_utf8_lossy(data).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_used() {
        let (address, path) = loopback_address("http://127.0.0.1:4321/attach/abc").unwrap();
        assert_eq!(address.port(), 4321);
        assert_eq!(path, "/attach/abc");
        let (_, path) = loopback_address("http://[::1]:80/portforward/x?port=1").unwrap();
        assert_eq!(path, "/portforward/x?port=1");
        assert!(loopback_address("http://10.0.0.1:80/attach/x").is_err());
        assert!(loopback_address("https://127.0.0.1:80/attach/x").is_err());
        assert!(loopback_address("http://localhost:80/attach/x").is_err());
    }
}
