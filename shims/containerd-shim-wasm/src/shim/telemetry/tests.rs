use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use containerd_shim::{Task, TtrpcContext, TtrpcResult, api};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;

use super::*;

/// An OTLP/HTTP receiver on loopback: every span of every `POST /v1/traces` it was sent, with
/// its resource's service name.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, ProtoSpan)>>>,
}

impl Receiver {
    /// Listening; its traces endpoint.
    fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let spans = self.spans.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let spans = spans.clone();
                std::thread::spawn(move || {
                    let mut stream = BufReader::new(stream.unwrap());
                    while let Some(body) = read_request(&mut stream) {
                        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                        for resource in request.resource_spans {
                            let service = resource
                                .resource
                                .iter()
                                .flat_map(|r| &r.attributes)
                                .find(|kv| kv.key == "service.name")
                                .and_then(|kv| kv.value.clone())
                                .map(|v| format!("{:?}", v.value))
                                .unwrap_or_default();
                            for scope in resource.scope_spans {
                                for span in scope.spans {
                                    spans.lock().unwrap().push((service.clone(), span));
                                }
                            }
                        }
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        stream.get_mut().write_all(answer.as_bytes()).unwrap();
                    }
                });
            }
        });
        endpoint
    }

    fn spans(&self) -> Vec<(String, ProtoSpan)> {
        self.spans.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request's body; `None` at the end of the connection.
fn read_request(stream: &mut BufReader<std::net::TcpStream>) -> Option<Vec<u8>> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn traces_are_exported_only_when_the_variables_ask_for_them() {
    let settings = |pairs: &[(&str, &str)]| settings_from(env(pairs), "containerd-shim-x-v1");
    assert_eq!(settings(&[]), Ok(None), "nothing set");
    assert_eq!(
        settings(&[("OTEL_SERVICE_NAME", "s")]),
        Ok(None),
        "no endpoint"
    );
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
    assert_eq!(
        settings(&[endpoint]),
        Ok(Some(ExportSettings {
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            protocol: Protocol::HttpBinary,
            service_name: "containerd-shim-x-v1".into(),
        }))
    );
    assert_eq!(
        settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "node-7-shims"),
        ]),
        Ok(Some(ExportSettings {
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            protocol: Protocol::HttpJson,
            service_name: "node-7-shims".into(),
        }))
    );
    assert_eq!(
        settings(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/t"),
            endpoint
        ])
        .unwrap()
        .unwrap()
        .endpoint,
        "http://c:9/t",
        "the traces endpoint is used as it is"
    );
    for off in [
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_SDK_DISABLED", "TRUE"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ] {
        assert_eq!(settings(&[endpoint, off]), Ok(None), "{off:?}");
    }
    let grpc = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
    assert!(grpc.contains("http/protobuf"), "{grpc}");
}

/// The Task service's defaults: every verb fails as unimplemented, except `state`, which
/// records a create phase as the real service does.
struct Phased;

impl Task for Phased {
    fn state(&self, _ctx: &TtrpcContext, _: api::StateRequest) -> TtrpcResult<api::StateResponse> {
        let start = SystemTime::now();
        phase(
            "rootfs mount",
            start,
            start + Duration::from_millis(3),
            vec![],
        );
        Ok(api::StateResponse::default())
    }
}

fn request_context(metadata: &[(&str, &str)]) -> TtrpcContext {
    TtrpcContext {
        fd: -1,
        cancel_rx: crossbeam_channel::never(),
        mh: Default::default(),
        res_tx: std::sync::mpsc::channel().0,
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect(),
        timeout_nano: 0,
    }
}

#[test]
fn each_verb_is_a_span_in_the_trace_containerd_sent() {
    let receiver = Receiver::default();
    let settings = ExportSettings {
        endpoint: receiver.start(),
        protocol: Protocol::HttpBinary,
        service_name: "containerd-shim-test-v1".into(),
    };
    let provider = provider(&settings).unwrap();
    let tracer = provider.tracer(SCOPE);
    assert!(EXPORTING.set((provider.clone(), tracer)).is_ok());
    let service = Traced::new(Phased);

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{parent_id}-01");
    let from_containerd = request_context(&[("traceparent", &traceparent)]);
    let create = api::CreateTaskRequest {
        id: "c1".into(),
        ..Default::default()
    };
    assert!(service.create(&from_containerd, create).is_err());
    let state = api::StateRequest {
        id: "c1".into(),
        exec_id: "e1".into(),
        ..Default::default()
    };
    service.state(&request_context(&[]), state).unwrap();
    provider.force_flush().unwrap();

    let spans = receiver.spans();
    let named = |name: &str| {
        spans
            .iter()
            .find(|(_, span)| span.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
            .clone()
    };
    let (service_name, create) = named("containerd.task.v2.Task/Create");
    assert!(
        service_name.contains("containerd-shim-test-v1"),
        "{service_name}"
    );
    assert_eq!(hex(&create.trace_id), trace_id);
    assert_eq!(hex(&create.parent_span_id), parent_id);
    assert_eq!(
        create.status.unwrap().code,
        StatusCode::Error as i32,
        "an unimplemented verb failed"
    );
    assert!(
        create
            .attributes
            .iter()
            .any(|kv| kv.key == "container.id" && format!("{:?}", kv.value).contains("c1"))
    );

    let (_, state) = named("containerd.task.v2.Task/State");
    assert_ne!(
        hex(&state.trace_id),
        trace_id,
        "no trace context: a trace of its own"
    );
    assert!(state.parent_span_id.is_empty());
    assert!(state.attributes.iter().any(|kv| kv.key == "exec.id"));
    let (_, phase) = named("rootfs mount");
    assert_eq!(phase.trace_id, state.trace_id);
    assert_eq!(phase.parent_span_id, state.span_id);
    assert_eq!(
        phase.end_time_unix_nano - phase.start_time_unix_nano,
        3_000_000
    );
    assert_eq!(spans.len(), 3, "{spans:#?}");

    // Without a tracer (the variables unset), the service is the inner one alone.
    let untraced = Traced::with_tracer(Phased, None);
    untraced
        .state(
            &request_context(&[("traceparent", &traceparent)]),
            api::StateRequest::default(),
        )
        .unwrap();
    provider.force_flush().unwrap();
    assert_eq!(receiver.spans().len(), 3, "no span without a tracer");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
