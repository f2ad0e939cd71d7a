//! OpenTelemetry traces of the shim, exported with OTLP over HTTP when the standard variables
//! of the shim's environment (containerd's) ask for them: a span for each Task verb
//! (`traced`), a child span for each phase of a create measured in the helper (`phase`).
//!
//! The exporter runs on the SDK's batch thread: a span ends into a bounded queue, so a
//! collector that is down or slow costs a verb nothing but the queueing (spans beyond the
//! queue are dropped), and the shim waits at most [`SHUTDOWN_TIMEOUT`] for it when it exits.

mod traced;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use log::{info, warn};
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use traced::Traced;

/// How long an exiting shim waits for its last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// The instrumentation scope of the shim's spans.
const SCOPE: &str = "containerd-shim-wasm";

/// The provider and tracer of this shim process, once exporting.
static EXPORTING: OnceLock<(SdkTracerProvider, SdkTracer)> = OnceLock::new();

/// What the environment asks of the exporter.
#[derive(Debug, PartialEq, Eq)]
pub struct ExportSettings {
    /// Where spans are posted: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces`.
    pub endpoint: String,
    pub protocol: Protocol,
    pub service_name: String,
}

/// The export the variables `env` reads ask for, `None` for none: exporting needs an endpoint
/// (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and
/// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off. The exporter itself
/// reads the headers and the timeout; `service` names the shim without `OTEL_SERVICE_NAME`,
/// and when it says `containerd`: containerd ≥ 2.0 sets that for itself, its shims inherit it,
/// and their spans would not be told from containerd's.
pub fn settings_from(
    env: impl Fn(&str) -> Option<String>,
    service: &str,
) -> Result<Option<ExportSettings>, String> {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    let endpoint = match (
        set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        set("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(traces), _) => traces.trim().to_string(),
        (None, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
        (None, None) => return Ok(None),
    };
    let protocol = match set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
        .map(str::trim)
    {
        None | Some("http/protobuf") => Protocol::HttpBinary,
        Some("http/json") => Protocol::HttpJson,
        Some(other) => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other:?}: the shims export OTLP over HTTP \
                 (http/protobuf, the default, or http/json; a collector's port 4318)"
            ));
        }
    };
    Ok(Some(ExportSettings {
        endpoint,
        protocol,
        service_name: set("OTEL_SERVICE_NAME")
            .map(|name| name.trim().to_string())
            .filter(|name| name != "containerd")
            .unwrap_or_else(|| service.to_string()),
    }))
}

/// Starts exporting when the shim's environment asks for it (see [`settings_from`]); a
/// setting the shim cannot honour is logged, and the shim serves without traces.
pub fn install(service: &str) {
    let settings = match settings_from(|name| std::env::var(name).ok(), service) {
        Ok(Some(settings)) => settings,
        Ok(None) => return,
        Err(why) => {
            warn!("traces not exported: {why}");
            return;
        }
    };
    match provider(&settings) {
        Ok(provider) => {
            let tracer = provider.tracer(SCOPE);
            if EXPORTING.set((provider, tracer)).is_ok() {
                info!(
                    "exporting traces with OTLP ({:?}) to {} as service {}",
                    settings.protocol, settings.endpoint, settings.service_name
                );
            }
        }
        Err(e) => warn!("traces not exported: {e}"),
    }
}

/// A provider exporting in batches with `settings`.
pub fn provider(settings: &ExportSettings) -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(settings.protocol)
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// Exports what is left, waiting at most [`SHUTDOWN_TIMEOUT`].
pub fn shutdown() {
    if let Some((provider, _)) = EXPORTING.get()
        && let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
    {
        warn!("export the last spans: {e}");
    }
}

fn tracer() -> Option<&'static SdkTracer> {
    EXPORTING.get().map(|(_, tracer)| tracer)
}

/// A span `name` from `start` to `end`, child of the verb's span this thread is in; nothing
/// when no verb span is (traces off, or a call from outside a verb).
pub fn phase(name: &str, start: SystemTime, end: SystemTime, attributes: Vec<KeyValue>) {
    let parent = Context::current();
    let Some(tracer) = tracer().filter(|_| parent.has_active_span()) else {
        return;
    };
    let mut span = tracer
        .span_builder(name.to_string())
        .with_start_time(start)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    span.end_with_timestamp(end);
}

#[cfg(test)]
mod tests;
