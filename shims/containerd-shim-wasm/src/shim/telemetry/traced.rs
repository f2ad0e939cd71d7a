//! The Task service with a span around each verb: named after the ttrpc method
//! (`containerd.task.v2.Task/Create`), a child of the trace context containerd ≥ 2.0 sends in
//! the request's metadata (`traceparent`, W3C), with the container and exec ids, and an error
//! status when the verb fails. The span is the thread's current context while the verb runs,
//! so that the verb's own spans (the create phases) are its children.

use containerd_shim::protos::ttrpc;
use containerd_shim::{Task, TtrpcContext, api};
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;

/// `inner` with a span around each verb when `tracer` is set; `inner` alone otherwise.
pub struct Traced<T> {
    inner: T,
    tracer: Option<SdkTracer>,
}

impl<T> Traced<T> {
    /// `inner` traced when the shim exports traces (`telemetry::install` ran and exports).
    pub fn new(inner: T) -> Self {
        Self::with_tracer(inner, super::tracer().cloned())
    }

    pub fn with_tracer(inner: T, tracer: Option<SdkTracer>) -> Self {
        Self { inner, tracer }
    }
}

/// Runs `verb` of `ctx`'s request inside its span.
fn traced<R>(
    tracer: &SdkTracer,
    ctx: &TtrpcContext,
    method: &str,
    (container, exec): (&str, &str),
    verb: impl FnOnce() -> ttrpc::Result<R>,
) -> ttrpc::Result<R> {
    let parent = TraceContextPropagator::new().extract(&Metadata(ctx));
    let mut attributes = vec![
        KeyValue::new("rpc.system", "ttrpc"),
        KeyValue::new("rpc.service", SERVICE),
        KeyValue::new("rpc.method", method.to_string()),
    ];
    if !container.is_empty() {
        attributes.push(KeyValue::new("container.id", container.to_string()));
    }
    if !exec.is_empty() {
        attributes.push(KeyValue::new("exec.id", exec.to_string()));
    }
    let span = tracer
        .span_builder(format!("{SERVICE}/{method}"))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    let context = parent.with_span(span);
    let result = {
        let _current = context.clone().attach();
        verb()
    };
    let span = context.span();
    if let Err(e) = &result {
        span.set_status(Status::error(e.to_string()));
    }
    span.end();
    result
}

/// The ttrpc service containerd's shims serve.
const SERVICE: &str = "containerd.task.v2.Task";

/// A request's ttrpc metadata, where containerd puts the W3C trace context.
struct Metadata<'a>(&'a TtrpcContext);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .metadata
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .and_then(|(_, values)| values.first())
            .map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.metadata.keys().map(String::as_str).collect()
    }
}

/// The container and exec ids of a request.
trait Ids {
    fn ids(&self) -> (&str, &str);
}

macro_rules! ids {
    (with exec: $($request:ty),*; without: $($plain:ty),*) => {
        $(impl Ids for $request {
            fn ids(&self) -> (&str, &str) {
                (&self.id, &self.exec_id)
            }
        })*
        $(impl Ids for $plain {
            fn ids(&self) -> (&str, &str) {
                (&self.id, "")
            }
        })*
    };
}

ids!(
    with exec: api::StartRequest, api::StateRequest, api::KillRequest, api::WaitRequest,
        api::DeleteRequest, api::ExecProcessRequest, api::ResizePtyRequest, api::CloseIORequest;
    without: api::CreateTaskRequest, api::PidsRequest, api::PauseRequest, api::ResumeRequest,
        api::CheckpointTaskRequest, api::UpdateTaskRequest, api::StatsRequest,
        api::ConnectRequest, api::ShutdownRequest
);

macro_rules! traced_verbs {
    ($($verb:ident($request:ty) -> $response:ty = $method:literal;)*) => {
        impl<T: Task> Task for Traced<T> {
            $(fn $verb(&self, ctx: &TtrpcContext, req: $request) -> ttrpc::Result<$response> {
                let Some(tracer) = &self.tracer else {
                    return self.inner.$verb(ctx, req);
                };
                let (container, exec) = req.ids();
                let (container, exec) = (container.to_string(), exec.to_string());
                traced(tracer, ctx, $method, (&container, &exec), || self.inner.$verb(ctx, req))
            })*
        }
    };
}

traced_verbs! {
    state(api::StateRequest) -> api::StateResponse = "State";
    create(api::CreateTaskRequest) -> api::CreateTaskResponse = "Create";
    start(api::StartRequest) -> api::StartResponse = "Start";
    delete(api::DeleteRequest) -> api::DeleteResponse = "Delete";
    pids(api::PidsRequest) -> api::PidsResponse = "Pids";
    pause(api::PauseRequest) -> api::Empty = "Pause";
    resume(api::ResumeRequest) -> api::Empty = "Resume";
    checkpoint(api::CheckpointTaskRequest) -> api::Empty = "Checkpoint";
    kill(api::KillRequest) -> api::Empty = "Kill";
    exec(api::ExecProcessRequest) -> api::Empty = "Exec";
    resize_pty(api::ResizePtyRequest) -> api::Empty = "ResizePty";
    close_io(api::CloseIORequest) -> api::Empty = "CloseIO";
    update(api::UpdateTaskRequest) -> api::Empty = "Update";
    wait(api::WaitRequest) -> api::WaitResponse = "Wait";
    stats(api::StatsRequest) -> api::StatsResponse = "Stats";
    connect(api::ConnectRequest) -> api::ConnectResponse = "Connect";
    shutdown(api::ShutdownRequest) -> api::Empty = "Shutdown";
}
