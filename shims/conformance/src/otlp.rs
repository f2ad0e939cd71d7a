//! An OpenTelemetry collector's receiving end for the tests and the benchmark: OTLP over
//! HTTP (`POST /v1/traces`, protobuf, decoded with opentelemetry-proto's messages), on
//! 127.0.0.1 in a containerd's network namespace, where that containerd's shims reach it.

use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use crate::http::{in_netns_of, read_message_bytes};

/// A span as received, with the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
pub struct Received {
    pub service: String,
    pub span: Span,
}

impl Received {
    /// The value of the span's string attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(text) => Some(text.as_str()),
                _ => None,
            })
    }
}

/// A receiver serving until dropped.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    /// Listening on 127.0.0.1:`port` in the network namespace of process `pid` (a
    /// containerd, started with the endpoint in its environment).
    pub fn start_in_netns_of(pid: u32, port: u16) -> Result<Self> {
        let listener = in_netns_of(pid, move || TcpListener::bind((Ipv4Addr::LOCALHOST, port)))
            .with_context(|| {
                format!("listen for OTLP on 127.0.0.1:{port} in containerd's network namespace")
            })?;
        let endpoint = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        listener.set_nonblocking(true)?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let received = received.clone();
                            std::thread::spawn(move || serve(stream, &received));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        Ok(Self {
            endpoint,
            received,
            stop,
        })
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The spans received once `done` holds of them, or an error listing them after `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Result<Vec<Received>> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return Ok(spans);
            }
            if Instant::now() > deadline {
                let names: Vec<String> = spans
                    .iter()
                    .map(|r| format!("{} ({})", r.span.name, r.service))
                    .collect();
                bail!("within {timeout:?}, received only {names:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Answers the export requests of one connection (an exporter keeps it alive), keeping their
/// spans.
fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let _ = stream.set_nonblocking(false);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok((message, body)) = read_message_bytes(&mut reader) {
        let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(request) if message.start_line.starts_with("POST /v1/traces ") => {
                keep(request, received);
                "200 OK"
            }
            _ => "400 Bad Request",
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn keep(request: ExportTraceServiceRequest, received: &Mutex<Vec<Received>>) {
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(name) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.lock().unwrap().push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
}

/// Bytes as lowercase hex, as trace and span ids are written in `traceparent`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
