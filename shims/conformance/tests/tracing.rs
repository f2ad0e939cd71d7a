//! The shims' traces (docs/debugging.md#traces): with `OTEL_EXPORTER_OTLP_ENDPOINT` in
//! containerd's environment, a shim exports a span per Task verb and, inside `Create`, one per
//! phase of the helper's work, to the collector (a receiver this test runs). containerd ≥ 2.0
//! reads the same variables, exports its own spans and sends their trace context with each
//! ttrpc request: the shim's spans are then children of containerd's, in one trace.
//!
//! The test starts a containerd of its own (the version of the suite's phase) with the
//! variables set, on a state directory of its own.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shim_conformance::ctr::Ctr;
use shim_conformance::environment::{Endpoint, containerd_script, pid_from_script};
use shim_conformance::images::test_images_dir;
use shim_conformance::otlp::{Received, Receiver, hex};

/// The collector's port, in the traced containerd's own network namespace.
const PORT: u16 = 4318;
const SHIM_SERVICE: &str = "containerd-shim-wasmtime-v1";
const CONTAINER: &str = "traced-1";

/// A private containerd with the OpenTelemetry variables in its environment; stopped on drop.
struct TracedContainerd {
    env: Vec<(&'static str, std::path::PathBuf)>,
    endpoint: Endpoint,
    _state: tempfile::TempDir,
}

impl TracedContainerd {
    fn start() -> Result<Self> {
        let state = tempfile::Builder::new()
            .prefix("traced-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
        let env = vec![
            ("WASM_SHIMS_STATE", state.path().to_path_buf()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{PORT}").into(),
            ),
            // Batches every 200 ms (the default is 5 s), for containerd's spans; the shim
            // exports its last batch when it exits.
            ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
        ];
        let containerd = Self {
            endpoint: Endpoint {
                address: state.path().join("containerd.sock"),
                namespace: "traced".into(),
            },
            env,
            _state: state,
        };
        containerd_script("start", &containerd.env())?;
        Ok(containerd)
    }

    fn env(&self) -> Vec<(&str, &Path)> {
        self.env
            .iter()
            .map(|(name, value)| (*name, value.as_path()))
            .collect()
    }

    fn ctr(&self, args: &[&str]) -> Ctr {
        Ctr::new(args).at(&self.endpoint)
    }
}

impl Drop for TracedContainerd {
    fn drop(&mut self) {
        if let Err(e) = containerd_script("stop", &self.env()) {
            eprintln!("stopping the traced containerd: {e:#}");
        }
    }
}

fn named<'a>(spans: &'a [Received], service: &str, name: &str) -> Option<&'a Received> {
    spans
        .iter()
        .find(|r| r.service == service && r.span.name == name)
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_shim_exports_a_span_per_verb_in_containerds_trace() -> Result<()> {
    let containerd = TracedContainerd::start()?;
    let receiver = Receiver::start_in_netns_of(pid_from_script(&containerd.env())?, PORT)?;
    let tarball = test_images_dir().join("wasi-demo-app.tar");
    let tarball = tarball.to_string_lossy();
    containerd
        .ctr(&["images", "import", "--all-platforms", &tarball])
        .output()?
        .success()
        .context("import the demo image")?;
    let out = containerd
        .ctr(&[
            "run",
            "--rm",
            "--runtime",
            "io.containerd.wasmtime.v1",
            "docker.io/library/wasi-demo-app:latest",
            CONTAINER,
            "/wasi-demo-app.wasm",
            "echo",
            "traced",
        ])
        .output()?;
    out.success()?;

    // Delete is the shim's last verb: its span comes in the batch the exiting shim sends.
    let spans = receiver.wait_for(Duration::from_secs(20), |spans| {
        named(spans, SHIM_SERVICE, "containerd.task.v2.Task/Delete").is_some()
    })?;
    let mut failures = Vec::new();
    let create = named(&spans, SHIM_SERVICE, "containerd.task.v2.Task/Create");
    for verb in ["Create", "Start", "Wait", "Delete"] {
        let name = format!("containerd.task.v2.Task/{verb}");
        match named(&spans, SHIM_SERVICE, &name) {
            Some(span) if span.attribute("container.id") == Some(CONTAINER) => {}
            other => failures.push(format!("{name} of {CONTAINER}: {other:?}")),
        }
    }
    if let Some(create) = create {
        for phase in ["rootfs mount", "resolve", "module load", "container setup"] {
            match named(&spans, SHIM_SERVICE, phase) {
                Some(span)
                    if span.span.parent_span_id == create.span.span_id
                        && span.span.trace_id == create.span.trace_id => {}
                other => failures.push(format!("phase {phase} under Create: {other:?}")),
            }
        }
        // containerd 2.x traces its own calls and sends their context to the shim.
        let version = std::env::var("WASM_SHIMS_CONTAINERD_VERSION").unwrap_or_default();
        if version.starts_with('2') {
            let parent = spans.iter().find(|r| {
                r.service != SHIM_SERVICE && r.span.span_id == create.span.parent_span_id
            });
            match parent {
                Some(parent) if parent.span.trace_id == create.span.trace_id => {}
                _ => failures.push(format!(
                    "containerd {version}: the shim's Create (parent {}) is not a child of a \
                     span of containerd's; containerd sent {:?}",
                    hex(&create.span.parent_span_id),
                    spans
                        .iter()
                        .filter(|r| r.service != SHIM_SERVICE)
                        .map(|r| (&r.service, &r.span.name, hex(&r.span.span_id)))
                        .collect::<Vec<_>>()
                )),
            }
        }
    }
    if !failures.is_empty() {
        bail!("{failures:#?}");
    }
    Ok(())
}
