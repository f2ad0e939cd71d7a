//! What the debugging aids of docs/debugging.md cost. Tracing: `ctr run --rm` of the demo's
//! `echo hi` on the wasmtime shim (cached), each case on a containerd of its own started the
//! same way but for the OpenTelemetry variables: none, a collector that answers, one that is
//! down (connection refused), one that hangs (accepts no connection). Profiling: a CPU-bound
//! run of the demo (`count`), with and without `io.containerd.wasm.profile-dir`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use shim_conformance::http::in_netns_of;
use shim_conformance::otlp::Receiver;

use crate::bench::Bench;
use crate::containerd::Containerd;
use crate::images;
use crate::stats::Summary;
use crate::variants::Image;

const RUNTIME: &str = "io.containerd.wasmtime.v1";
/// The collector's port in each traced containerd's own network namespace.
const COLLECTOR_PORT: u16 = 4318;
/// Millions of steps of the profiled run: about two seconds of Wasm code on this machine.
pub const COUNT_MILLIONS: &str = "1000";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Debugging {
    /// `ctr run --rm … echo hi` per tracing case.
    pub tracing: Vec<Case>,
    /// `ctr run --rm … count` unprofiled and profiled.
    pub profiling: Vec<Case>,
    /// Spans the answering collector received in its case.
    pub spans_received: usize,
    /// Timed runs per tracing case (`BENCH_RUNS`) and per profiling case
    /// (`BENCH_MODULE_RUNS`).
    pub tracing_runs: usize,
    pub profiling_runs: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub label: String,
    pub summary: Summary,
}

/// Where a traced containerd's shims send their spans.
enum Collector {
    None,
    Answering,
    Down,
    Hanging,
}

impl Collector {
    fn label(&self) -> &'static str {
        match self {
            Collector::None => "tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT)",
            Collector::Answering => "tracing on, collector answering",
            Collector::Down => "tracing on, collector down (refused)",
            Collector::Hanging => "tracing on, collector hanging (never accepts)",
        }
    }
}

pub fn measure(bench: &Bench) -> Result<Debugging> {
    let mut tracing = Vec::new();
    let mut spans_received = 0;
    for collector in [
        Collector::None,
        Collector::Answering,
        Collector::Down,
        Collector::Hanging,
    ] {
        let (summary, spans) =
            traced_starts(bench, &collector).with_context(|| collector.label().to_string())?;
        if matches!(collector, Collector::Answering) {
            spans_received = spans;
        }
        tracing.push(Case {
            label: collector.label().into(),
            summary,
        });
    }
    let profiling = vec![
        Case {
            label: "count, not profiled".into(),
            summary: counted_runs(bench, false)?,
        },
        Case {
            label: "count, profiled (io.containerd.wasm.profile-dir)".into(),
            summary: counted_runs(bench, true)?,
        },
    ];
    Ok(Debugging {
        tracing,
        profiling,
        spans_received,
        tracing_runs: bench.sizes.runs,
        profiling_runs: bench.sizes.module_runs,
    })
}

/// The timed starts on a containerd set up for `collector`, and the spans it received.
fn traced_starts(bench: &Bench, collector: &Collector) -> Result<(Summary, usize)> {
    let mut paths = bench.paths.clone();
    paths.state_dir = bench
        .paths
        .state_dir
        .with_file_name("bench-traced-containerd");
    let endpoint = format!("http://127.0.0.1:{COLLECTOR_PORT}");
    let env = match collector {
        Collector::None => Vec::new(),
        _ => vec![(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            PathBuf::from(&endpoint),
        )],
    };
    let containerd = Containerd::start_with(&paths, env)?;
    containerd.clear_cache()?;
    let pid = containerd.pid()?;
    let receiver = match collector {
        Collector::Answering => Some(Receiver::start_in_netns_of(pid, COLLECTOR_PORT)?),
        _ => None,
    };
    // A listener nobody accepts on: connections wait in its backlog, requests unanswered.
    let _hanging = match collector {
        Collector::Hanging => Some(in_netns_of(pid, || {
            TcpListener::bind((Ipv4Addr::LOCALHOST, COLLECTOR_PORT))
        })?),
        _ => None,
    };
    images::import(
        &containerd,
        &bench.paths.test_images.join("wasi-demo-app.tar"),
    )?;
    let image = Image::wasi_demo();
    let mut samples = Vec::new();
    // The first run fills the precompile cache, untimed.
    for round in 0..=bench.sizes.runs {
        let id = bench.unique_id("traced");
        let program = image.args(&["echo", "hi"]);
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, &image.reference, &id];
        args.extend(program.iter().map(String::as_str));
        let started = Instant::now();
        let out = containerd.ctr(&args).output()?;
        let elapsed = started.elapsed();
        out.success()?;
        if round > 0 {
            samples.push(elapsed);
        }
    }
    let spans = match &receiver {
        Some(receiver) => receiver
            .wait_for(Duration::from_secs(10), |spans| !spans.is_empty())?
            .len(),
        None => 0,
    };
    drop(containerd);
    Ok((Summary::of(&samples).context("no samples")?, spans))
}

/// Timed runs of the demo's `count` on the bench's containerd, profiled into a volume or not.
fn counted_runs(bench: &Bench, profiled: bool) -> Result<Summary> {
    let volume = bench.paths.state_dir.with_file_name("bench-profiles");
    std::fs::create_dir_all(&volume)?;
    let mount = format!(
        "type=bind,src={},dst=/profiles,options=rbind:rw",
        volume.display()
    );
    let image = Image::wasi_demo();
    let mut samples = Vec::new();
    for round in 0..=bench.sizes.module_runs {
        let id = bench.unique_id("count");
        let mut args = vec!["run", "--rm", "--runtime", RUNTIME, "--mount", &mount];
        if profiled {
            args.extend(["--annotation", "io.containerd.wasm.profile-dir=/profiles"]);
        }
        let program = image.args(&["count", COUNT_MILLIONS]);
        args.extend([image.reference.as_str(), &id]);
        args.extend(program.iter().map(String::as_str));
        let started = Instant::now();
        let out = bench.containerd.ctr(&args).output()?;
        let elapsed = started.elapsed();
        out.success()?;
        if !out.stdout.contains("counted") {
            bail!("`count` printed {:?}", out.stdout);
        }
        if round > 0 {
            samples.push(elapsed);
        }
    }
    let written = std::fs::read_dir(&volume)?.count();
    std::fs::remove_dir_all(&volume)?;
    if profiled != (written > 0) {
        bail!("{written} profiles written by runs profiled: {profiled}");
    }
    Summary::of(&samples).context("no samples")
}
