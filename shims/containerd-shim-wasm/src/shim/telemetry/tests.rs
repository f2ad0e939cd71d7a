use std::collections::HashMap;

use containerd_shim::{Task, TtrpcContext, TtrpcResult, api};
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};

use super::*;

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
        settings(&[endpoint, ("OTEL_SERVICE_NAME", "containerd")])
            .unwrap()
            .unwrap()
            .service_name,
        "containerd-shim-x-v1",
        "containerd's own name, inherited, is not the shim's"
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
    // The conformance suite checks the OTLP export itself (tests/tracing.rs); here the
    // spans are kept in memory.
    let exported = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(SimpleSpanProcessor::new(exported.clone()))
        .build();
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

    let spans = exported.get_finished_spans().unwrap();
    let named = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
            .clone()
    };
    let create = named("containerd.task.v2.Task/Create");
    assert_eq!(
        create.span_context.trace_id(),
        TraceId::from_hex(trace_id).unwrap()
    );
    assert_eq!(create.parent_span_id, SpanId::from_hex(parent_id).unwrap());
    assert!(
        matches!(&create.status, Status::Error { .. }),
        "an unimplemented verb failed: {:?}",
        create.status
    );
    let attribute = |span: &opentelemetry_sdk::trace::SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute(&create, "container.id").as_deref(), Some("c1"));

    let state = named("containerd.task.v2.Task/State");
    assert_ne!(
        state.span_context.trace_id(),
        create.span_context.trace_id(),
        "no trace context: a trace of its own"
    );
    assert_eq!(state.parent_span_id, SpanId::INVALID);
    assert_eq!(attribute(&state, "exec.id").as_deref(), Some("e1"));
    let phase = named("rootfs mount");
    assert_eq!(phase.span_context.trace_id(), state.span_context.trace_id());
    assert_eq!(phase.parent_span_id, state.span_context.span_id());
    assert_eq!(
        phase.end_time.duration_since(phase.start_time).unwrap(),
        Duration::from_millis(3)
    );
    assert_eq!(spans.len(), 3, "{spans:#?}");

    // Without a tracer (the variables unset), the service is the inner one alone: no span, not
    // even the phase's.
    let untraced = Traced::with_tracer(Phased, None);
    untraced
        .state(
            &request_context(&[("traceparent", &traceparent)]),
            api::StateRequest::default(),
        )
        .unwrap();
    assert_eq!(exported.get_finished_spans().unwrap().len(), 3);
}
