//! HTTP against containers that serve in containerd's network namespace.
//!
//! With `ctr run --net-host` a container shares the private containerd's network namespace,
//! which is not this process's: sockets are created by a thread that has joined that
//! namespace (`setns`), and keep it for their lifetime wherever they are used afterwards.
//!
//! The client is a small HTTP/1.1 one written here rather than taken from a crate: the
//! tests must control connections exactly (several requests on one kept-alive connection,
//! one connection per concurrent request), which client crates hide behind their pools.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns};

use crate::environment::containerd;

/// Runs `make` on a thread inside containerd's network namespace and returns what it made.
pub fn in_containerd_netns<T: Send + 'static>(
    make: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    in_netns_of(containerd().pid(), make)
}

/// Runs `make` on a thread inside the network namespace of process `pid`.
pub fn in_netns_of<T: Send + 'static>(
    pid: u32,
    make: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let netns = format!("/proc/{pid}/ns/net");
    std::thread::spawn(move || -> Result<T> {
        let ns = File::open(&netns).with_context(|| format!("open {netns}"))?;
        setns(&ns, CloneFlags::CLONE_NEWNET).with_context(|| format!("setns {netns}"))?;
        Ok(make()?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread in {} panicked", "containerd's netns"))?
}

/// A listener on 127.0.0.1 (a free port) in containerd's network namespace.
pub fn listen_loopback() -> Result<TcpListener> {
    in_containerd_netns(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .context("listen on 127.0.0.1 in containerd's network namespace")
}

/// An HTTP/1.1 connection to `127.0.0.1:port` in containerd's network namespace.
pub struct Connection {
    reader: BufReader<TcpStream>,
    port: u16,
}

impl Connection {
    pub fn open(port: u16) -> Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream =
            in_containerd_netns(move || TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
                .with_context(|| format!("connect to {addr} in containerd's network namespace"))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            reader: BufReader::new(stream),
            port,
        })
    }

    /// Sends one request (no body) and reads the response; the connection stays open.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Message> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n",
            self.port
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.reader
            .get_mut()
            .write_all(head.as_bytes())
            .with_context(|| format!("send {method} {path}"))?;
        read_message(&mut self.reader).with_context(|| format!("response to {method} {path}"))
    }
}

/// One request on a new connection.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Result<Message> {
    Connection::open(port)?.request("GET", path, headers)
}

/// GETs every path of `paths` at once, each on a connection of its own, all opened before the
/// first request goes out (so every request is in flight together); the answers in order.
pub fn get_all_at_once(port: u16, paths: &[String]) -> Result<Vec<Result<Message>>> {
    let connections = paths
        .iter()
        .map(|_| Connection::open(port))
        .collect::<Result<Vec<_>>>()?;
    Ok(std::thread::scope(|scope| {
        let requests: Vec<_> = connections
            .into_iter()
            .zip(paths)
            .map(|(mut connection, path)| scope.spawn(move || connection.request("GET", path, &[])))
            .collect();
        requests
            .into_iter()
            .map(|request| {
                request
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the request thread panicked")))
            })
            .collect()
    }))
}

/// Checks every answer of [`get_all_at_once`] for `paths` with `check` (given the path), and
/// fails with each failed request, its index and path, and how many failed of how many.
pub fn expect_every_answer(
    paths: &[String],
    answers: Vec<Result<Message>>,
    check: impl Fn(&str, &Message) -> Result<()>,
) -> Result<()> {
    let failures: Vec<String> = paths
        .iter()
        .zip(answers)
        .enumerate()
        .filter_map(|(i, (path, answer))| {
            let failed = answer.and_then(|response| check(path, &response)).err()?;
            Some(format!("request {i} ({path}): {failed:#}"))
        })
        .collect();
    if !failures.is_empty() {
        bail!(
            "{} of {} requests failed: {}",
            failures.len(),
            paths.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// Retries connecting until the server on `port` accepts, for at most `timeout`.
pub fn wait_until_serving(port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match Connection::open(port) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("nothing served port {port} within {timeout:?}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A request or response: its first line, headers (names lowercased) and body.
#[derive(Debug, Clone)]
pub struct Message {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Message {
    /// The status code of a response.
    pub fn status(&self) -> Result<u16> {
        self.start_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("no status code in {:?}", self.start_line))
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Fails unless the status is `status`.
    pub fn expect_status(&self, status: u16) -> Result<&Self> {
        if self.status()? != status {
            bail!("expected status {status}, got {self:?}");
        }
        Ok(self)
    }
}

/// Reads one HTTP/1.1 message whose body is framed by `content-length` or chunked (or absent).
pub fn read_message(reader: &mut impl BufRead) -> Result<Message> {
    let (mut message, body) = read_message_bytes(reader)?;
    message.body = String::from_utf8(body).context("a body that is not UTF-8")?;
    Ok(message)
}

/// As [`read_message`], with the body as bytes (left out of the message).
pub fn read_message_bytes(reader: &mut impl BufRead) -> Result<(Message, Vec<u8>)> {
    let mut start_line = String::new();
    if reader.read_line(&mut start_line)? == 0 {
        bail!("connection closed before a message");
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let message = Message {
        start_line: start_line.trim_end().to_string(),
        headers,
        body: String::new(),
    };
    let mut body = Vec::new();
    if message.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16)
                .with_context(|| format!("bad chunk size {size:?}"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = message.header("content-length") {
        let length: usize = length.parse()?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok((message, body))
}

/// A plain HTTP server on 127.0.0.1 in containerd's network namespace that answers every
/// request with what it saw (its request line, and whether `x-auth-subject` and
/// `authorization` came), and counts them: the far end of a component's outgoing HTTP.
pub struct Upstream {
    pub port: u16,
    seen: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// On a port the system picks.
    pub fn start() -> Result<Self> {
        Self::serve(listen_loopback()?)
    }

    /// On `port`, for a component whose allowed hosts name it.
    pub fn start_on(port: u16) -> Result<Self> {
        let listener = in_containerd_netns(move || TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .with_context(|| {
                format!("listen on 127.0.0.1:{port} in containerd's network namespace")
            })?;
        Self::serve(listener)
    }

    fn serve(listener: TcpListener) -> Result<Self> {
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let seen = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || serve_upstream(&listener, &seen, &stop))
        };
        Ok(Self {
            port,
            seen,
            stop,
            thread: Some(thread),
        })
    }

    /// Requests it has answered.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_upstream(listener: &TcpListener, seen: &AtomicUsize, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok((stream, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(stream);
        let Ok(request) = read_message(&mut reader) else {
            continue;
        };
        seen.fetch_add(1, Ordering::Relaxed);
        let body = format!(
            "upstream saw {}\nx-auth-subject={}\nauthorization={}\n",
            request.start_line,
            request.header("x-auth-subject").unwrap_or(""),
            if request.header("authorization").is_some() {
                "present"
            } else {
                "absent"
            },
        );
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: seen\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = reader.get_mut().write_all(response.as_bytes());
    }
}
