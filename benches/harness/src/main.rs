//! `shim-bench`: benchmarks the Wasm shims against runc on a private containerd and writes
//! `benches/results/latest.json`, `benches/report.md` and `benches/plots/*.svg`.
//!
//! `shim-bench` runs everything (what `make bench` does); `shim-bench report FILE` rewrites
//! the report and charts from a saved results file.

mod bench;
mod cold_start;
mod config;
mod containerd;
mod cpu;
mod debugging;
mod density;
mod images;
mod machine;
mod memory;
mod module_size;
mod plots;
mod report;
mod results;
mod stats;
mod targets;
mod throughput;
mod variants;

use std::fmt::Display;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::bench::Bench;
use crate::config::{Paths, Sizes};
use crate::containerd::Containerd;
use crate::machine::Machine;
use crate::results::{Failure, Results};
use crate::variants::{Cache, Engines, Variant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.as_slice() {
        [] => run(),
        [verb, file] if verb == "report" => rewrite_report(Path::new(file)),
        [verb] if verb == "debugging" => run_debugging(),
        _ => Err(anyhow::anyhow!(
            "usage: shim-bench            run the benchmarks (make bench)\n       \
             shim-bench report FILE  rewrite the report from a results file\n       \
             shim-bench debugging    measure tracing and profiling alone, into the last results"
        )),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("shim-bench: some measurements failed; the report lists them");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("shim-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Measures the cost of tracing and profiling alone, replacing that part of the last results
/// (`benches/results/latest.json`), and rewrites the report.
fn run_debugging() -> Result<bool> {
    let paths = Paths::from_env()?;
    let json = paths.out_dir.join("results/latest.json");
    let mut results = Results::read(&json)?;
    let containerd = Containerd::start(&paths)?;
    let bench = Bench::new(paths.clone(), Sizes::from_env()?, containerd)?;
    images::import(
        &bench.containerd,
        &bench.paths.test_images.join("wasi-demo-app.tar"),
    )?;
    let debugging = debugging::measure(&bench)?;
    report_debugging(&debugging);
    results.debugging = Some(debugging);
    drop(bench);
    results.write(&json)?;
    report::write(&results, &paths.out_dir).context("cannot write the report")?;
    Ok(true)
}

fn report_debugging(d: &debugging::Debugging) {
    for case in d.tracing.iter().chain(&d.profiling) {
        progress(format_args!(
            "debugging, {}: median {:.0} ms",
            case.label, case.summary.median_ms
        ));
    }
}

fn rewrite_report(file: &Path) -> Result<bool> {
    let results = Results::read(file)?;
    let paths = Paths::from_env()?;
    report::write(&results, &paths.out_dir)?;
    Ok(true)
}

/// Runs every measurement; `Ok(false)` when some failed (they are in the report).
fn run() -> Result<bool> {
    let paths = Paths::from_env()?;
    let sizes = Sizes::from_env()?;
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut machine = Machine::inspect(&paths.repo);
    let wasmtime = paths.shim_bin_dir.join("containerd-shim-wasmtime-v1");
    if !wasmtime.is_file() {
        bail!("{} is missing: run `make build`", wasmtime.display());
    }
    let engines = Engines::detect(&paths.shim_bin_dir);
    if !engines.wamr {
        progress(format_args!(
            "{} not built: WAMR is left out",
            variants::WAMR_BINARY
        ));
    }
    let out_dir = paths.out_dir.clone();
    let containerd = Containerd::start(&paths)?;
    let bench = Bench::new(paths, sizes, containerd)?;
    for tarball in ["wasi-demo-app.tar", "native-demo.tar"] {
        images::import(&bench.containerd, &bench.paths.test_images.join(tarball))?;
    }

    let mut failures = Vec::new();
    let demo = engines.demo_variants();
    let (cold_start, cold_start_failures) = cold_start::measure(&bench, &demo);
    for c in &cold_start {
        progress(format_args!(
            "cold start, {}: ctr median {:.0} ms, API median {:.0} ms",
            c.label, c.ctr.median_ms, c.api.median_ms
        ));
    }
    for (variant, error) in cold_start_failures {
        failed(&mut failures, "cold start", &variant, &error);
    }
    let throughput = measure_each("throughput", &demo, &mut failures, |variant| {
        let t = throughput::measure(&bench, variant)?;
        for p in &t.points {
            progress(format_args!(
                "throughput, {} at parallelism {}: {:.1} containers/s",
                t.label, p.parallelism, p.per_second
            ));
        }
        Ok(t)
    });
    let pods: Vec<Variant> = demo
        .iter()
        .filter(|v| v.cache != Cache::Uncached)
        .cloned()
        .collect();
    let density = measure_each("density", &pods, &mut failures, |variant| {
        let d = density::measure(&bench, variant)?;
        progress(format_args!(
            "density, {}: {:.2} MB per added container",
            d.label,
            d.per_added_container_kib.map_or(f64::NAN, targets::mb)
        ));
        Ok(d)
    });
    let mut module_size = Vec::new();
    for (name, bytes) in module_size::SIZES {
        match module_size::prepare(&bench, name, bytes) {
            Ok(module) => {
                let variants = engines.wasm_variants(&module.image);
                let what = format!("module size {name}");
                module_size.extend(measure_each(&what, &variants, &mut failures, |variant| {
                    let m = module_size::measure(&bench, &module, variant)?;
                    progress(format_args!(
                        "module size {name}, {}: median {:.0} ms",
                        m.label, m.summary.median_ms
                    ));
                    Ok(m)
                }));
            }
            Err(e) => failures.push(Failure {
                measurement: format!("module size {name}"),
                variant: "all".into(),
                error: format!("{e:#}"),
            }),
        }
    }

    let debugging = match debugging::measure(&bench) {
        Ok(d) => {
            report_debugging(&d);
            Some(d)
        }
        Err(e) => {
            failures.push(Failure {
                measurement: "debugging".into(),
                variant: "wasmtime".into(),
                error: format!("{e:#}"),
            });
            None
        }
    };

    machine.load_at_end = machine::load_average();
    let results = Results {
        started_at,
        duration_s: started.elapsed().as_secs_f64(),
        machine,
        note: std::env::var("BENCH_NOTE")
            .ok()
            .filter(|n| !n.trim().is_empty()),
        sizes: bench.sizes.clone(),
        wamr: engines.wamr,
        cold_start,
        throughput,
        density,
        module_size,
        debugging,
        failures,
    };
    // Stops containerd (and every shim and container) before writing.
    drop(bench);
    let json = out_dir.join("results/latest.json");
    results.write(&json)?;
    report::write(&results, &out_dir).context("cannot write the report")?;
    progress(format_args!(
        "done in {:.1} min: {} and {}",
        results.duration_s / 60.0,
        json.display(),
        out_dir.join("report.md").display()
    ));
    Ok(results.failures.is_empty())
}

/// Runs `measure` for each variant; a failure is recorded and the others still run.
fn measure_each<T>(
    measurement: &str,
    variants: &[Variant],
    failures: &mut Vec<Failure>,
    mut measure: impl FnMut(&Variant) -> Result<T>,
) -> Vec<T> {
    variants
        .iter()
        .filter_map(|variant| match measure(variant) {
            Ok(value) => Some(value),
            Err(e) => {
                failed(failures, measurement, variant, &e);
                None
            }
        })
        .collect()
}

fn failed(
    failures: &mut Vec<Failure>,
    measurement: &str,
    variant: &Variant,
    error: &anyhow::Error,
) {
    let error = format!("{error:#}");
    progress(format_args!(
        "{measurement}, {}: FAILED: {error}",
        variant.label
    ));
    failures.push(Failure {
        measurement: measurement.to_owned(),
        variant: variant.label.to_owned(),
        error,
    });
}

fn progress(message: impl Display) {
    eprintln!("shim-bench: {message}");
}
