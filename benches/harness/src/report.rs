//! `benches/report.md` and its charts in `benches/plots/`, made from one run's results.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::plots::{self, Bars, Line};
use crate::results::Results;
use crate::targets::{self, mb};

/// Writes the report and its charts into `out_dir`.
pub fn write(results: &Results, out_dir: &Path) -> Result<()> {
    let plot_dir = out_dir.join("plots");
    std::fs::create_dir_all(&plot_dir)
        .with_context(|| format!("cannot create {}", plot_dir.display()))?;
    let mut md = String::new();
    header(&mut md, results);
    targets_section(&mut md, results);
    cold_start(&mut md, results, &plot_dir)?;
    throughput(&mut md, results, &plot_dir)?;
    density(&mut md, results, &plot_dir)?;
    module_size(&mut md, results, &plot_dir)?;
    debugging(&mut md, results);
    missing(&mut md, results);
    how_to_run(&mut md);
    let path = out_dir.join("report.md");
    std::fs::write(&path, md).with_context(|| format!("cannot write {}", path.display()))
}

fn header(md: &mut String, r: &Results) {
    let m = &r.machine;
    let _ = writeln!(md, "# Benchmarks: the Wasm shims against runc\n");
    let _ = writeln!(
        md,
        "Written by `make bench` (`benches/harness`, crate `shim-bench`). **Every number below \
         comes from one run**, started {} and lasting {:.1} minutes, against one private \
         containerd; raw data in `benches/results/latest.json`.\n",
        r.started_at,
        r.duration_s / 60.0
    );
    let _ = writeln!(md, "| machine | |\n|---|---|");
    let _ = writeln!(md, "| cores | {} ({}) |", m.cores, m.cpu_model);
    let _ = writeln!(md, "| memory | {} MiB |", m.memory_mib);
    let _ = writeln!(md, "| kernel | {} (cgroups {}) |", m.kernel, m.cgroups);
    let _ = writeln!(md, "| containerd | {} |", m.containerd);
    let _ = writeln!(md, "| runc | {} |", m.runc);
    let _ = writeln!(md, "| commit | {} |", m.commit);
    let _ = writeln!(
        md,
        "| 1-minute load average | {:.2} at the start, {:.2} at the end |\n",
        m.load_at_start, m.load_at_end
    );
    let busy = m.load_at_start.max(m.load_at_end) > 0.5;
    if busy {
        let _ = writeln!(
            md,
            "**The machine was busy**: other work kept the load average above 0.5 on {} cores \
             during this run, so the numbers carry that noise (and the throughput runs had less \
             than the whole machine).\n",
            m.cores
        );
    }
    if let Some(note) = &r.note {
        let _ = writeln!(md, "Note on this run: {note}\n");
    }
}

fn verdict_word(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn targets_section(md: &mut String, r: &Results) {
    let verdicts = targets::evaluate(r);
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| target | measured | verdict | by how much |\n|---|---|---|---|"
    );
    for v in &verdicts {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            v.target,
            v.measured,
            verdict_word(v.met),
            v.margin
        );
    }
    md.push('\n');
    for v in verdicts.iter().filter(|v| v.why.is_some()) {
        let _ = writeln!(
            md,
            "- Why missed ({}): {}",
            v.target,
            v.why.as_deref().unwrap_or("")
        );
    }
    md.push('\n');
}

fn cold_start(md: &mut String, r: &Results, plot_dir: &Path) -> Result<()> {
    let _ = writeln!(md, "## Cold start\n");
    let _ = writeln!(
        md,
        "One container running `echo hi` (the demo: `/wasi-demo-app.wasm echo hi`, for runc the \
         static native demo `/native-demo echo hi`), timed from start to removal, {} times per \
         runtime after one untimed warm-up. **ctr**: wall time of `ctr run --rm`. **API**: the \
         same steps through containerd's gRPC API from this process (container record, \
         snapshot, task create, start, wait, task delete, snapshot and record removal), without \
         ctr's process, FIFOs and output copying. Uncached: the precompile cache \
         (`<state>/wasm-cache`) is removed before every run, so each one compiles the module.\n",
        r.sizes.runs
    );
    if r.cold_start.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        md,
        "| runtime | ctr median | ctr p90 | API median | API p90 |\n|---|---|---|---|---|"
    );
    for c in &r.cold_start {
        let _ = writeln!(
            md,
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            c.label, c.ctr.median_ms, c.ctr.p90_ms, c.api.median_ms, c.api.p90_ms
        );
    }
    for c in r.cold_start.iter().filter(|c| c.ctr_lost_output > 0) {
        let _ = writeln!(
            md,
            "\n{}: in {} of {} timed runs ctr exited 0 but printed nothing (the container ran; \
             ctr did not get its output).",
            c.label,
            c.ctr_lost_output,
            c.ctr.samples_ms.len()
        );
    }
    let categories: Vec<String> = r.cold_start.iter().map(|c| c.label.clone()).collect();
    let series = [
        Bars {
            label: "ctr run --rm (median; line: p90)".into(),
            color: plots::color_of("wasmtime-cached"),
            values: r
                .cold_start
                .iter()
                .map(|c| Some((c.ctr.median_ms, Some(c.ctr.p90_ms))))
                .collect(),
        },
        Bars {
            label: "API (median; line: p90)".into(),
            color: plots::color_of("wamr"),
            values: r
                .cold_start
                .iter()
                .map(|c| Some((c.api.median_ms, Some(c.api.p90_ms))))
                .collect(),
        },
    ];
    plots::grouped_bars(
        &plot_dir.join("cold-start.svg"),
        "Cold start (echo hi)",
        "milliseconds",
        &categories,
        &series,
    )?;
    let _ = writeln!(md, "\n![cold start](plots/cold-start.svg)\n");
    Ok(())
}

/// Who spent the CPU at the highest parallelism: containerd's process, this client, the rest.
fn cpu_shares(md: &mut String, r: &Results) {
    let Some(level) = r.sizes.parallelism.iter().max() else {
        return;
    };
    let points: Vec<(&str, &crate::throughput::Point)> = r
        .throughput
        .iter()
        .filter_map(|t| {
            let point = t.points.iter().find(|p| p.parallelism == *level)?;
            (point.containerd_cpu_ms_per_container > 0.0).then_some((t.label.as_str(), point))
        })
        .collect();
    if points.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\nWhere the CPU went at parallelism {level}, per container: containerd's own process, \
         this benchmark's process (the API client), and the rest (the shim and its helpers, \
         the container's processes, the kernel's work for them).\n\n\
         | runtime | all | containerd | API client | rest |\n|---|---|---|---|---|"
    );
    for (label, p) in points {
        let rest = p.cpu_ms_per_container
            - p.containerd_cpu_ms_per_container
            - p.client_cpu_ms_per_container;
        let _ = writeln!(
            md,
            "| {label} | {:.0} ms | {:.0} ms | {:.0} ms | {rest:.0} ms |",
            p.cpu_ms_per_container,
            p.containerd_cpu_ms_per_container,
            p.client_cpu_ms_per_container
        );
    }
}

fn throughput(md: &mut String, r: &Results, plot_dir: &Path) -> Result<()> {
    let _ = writeln!(md, "## Throughput\n");
    let _ = writeln!(
        md,
        "Short containers (`echo hi`) through the API, a fixed number in flight, each one \
         created, started, waited for and removed; containers per second over the whole batch \
         (the table gives each runtime's batch size). Uncached wasmtime compiles the module for \
         every container: the cache directory is replaced by a file for the duration, so the \
         shim cannot use it (removing it before each container does not work with many in \
         flight). CPU/container is the machine's busy CPU time during the batch divided by its \
         containers.\n"
    );
    if r.throughput.is_empty() {
        return Ok(());
    }
    let levels = &r.sizes.parallelism;
    let mut head = String::from("| runtime | containers |");
    let mut rule = String::from("|---|---|");
    for p in levels {
        let _ = write!(head, " parallelism {p} | CPU/container at {p} |");
        rule.push_str("---|---|");
    }
    let _ = writeln!(md, "{head}\n{rule}");
    for t in &r.throughput {
        let mut row = format!("| {} | {} |", t.label, t.containers);
        for p in levels {
            match t.points.iter().find(|point| point.parallelism == *p) {
                Some(point) => {
                    let _ = write!(
                        row,
                        " {:.1}/s | {:.0} ms |",
                        point.per_second, point.cpu_ms_per_container
                    );
                }
                None => row.push_str(" — | — |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    cpu_shares(md, r);
    let names: Vec<String> = levels.iter().map(|p| p.to_string()).collect();
    let series: Vec<Line> = r
        .throughput
        .iter()
        .map(|t| Line {
            label: t.label.clone(),
            color: plots::color_of(&t.variant),
            points: t
                .points
                .iter()
                .filter_map(|point| {
                    let x = levels.iter().position(|p| *p == point.parallelism)?;
                    Some((x as f64, point.per_second))
                })
                .collect(),
        })
        .collect();
    plots::lines(
        &plot_dir.join("throughput.svg"),
        "Throughput (echo hi, through the API)",
        ("containers in flight", "containers per second"),
        Some(&names),
        &series,
    )?;
    let _ = writeln!(md, "\n![throughput](plots/throughput.svg)\n");
    Ok(())
}

fn density(md: &mut String, r: &Results, plot_dir: &Path) -> Result<()> {
    let _ = writeln!(md, "## Density\n");
    let _ = writeln!(
        md,
        "One pod of sleeping containers (`sleep 3600`) per runtime, grown to {:?} containers: \
         the first is the sandbox, the others carry `io.kubernetes.cri.sandbox-id=<sandbox>` so \
         they share its shim (set through the API, as CRI does; runc's shim groups a pod the \
         same way). Memory is the PSS from `/proc/PID/smaps_rollup` summed over the pod's shim, \
         every process below it (the Wasm shims' helper zygote included) and every process in \
         its containers' cgroups, read 2 s after the last start. PSS splits a shared page \
         among the processes that map it, so the shim binary's pages, and a precompiled \
         module's code that wasmtime maps from the cache, are counted once over the pod (and \
         shared further with other pods). MB = 10^6 bytes.\n",
        r.sizes.density
    );
    if r.density.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        md,
        "| runtime | containers | shims | processes | PSS | RSS | per added container (PSS) |\n|---|---|---|---|---|---|---|"
    );
    for d in &r.density {
        for (i, p) in d.points.iter().enumerate() {
            let per_added = match (i + 1 == d.points.len(), d.per_added_container_kib) {
                (true, Some(kib)) => format!("{:.2} MB", mb(kib)),
                _ => String::new(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} MB | {:.1} MB | {} |",
                d.label,
                p.containers,
                p.shims,
                p.processes,
                mb(p.total.pss_kib as f64),
                mb(p.total.rss_kib as f64),
                per_added
            );
        }
    }
    let _ = writeln!(
        md,
        "\nAt the largest pod, one member container's process and the shim process:\n"
    );
    let _ = writeln!(
        md,
        "| runtime | process | PSS | anonymous (PSS) | file-backed (PSS) | private | RSS |\n|---|---|---|---|---|---|---|"
    );
    for d in &r.density {
        for (what, u) in [
            ("member container", d.member_process),
            ("shim", d.shim_process),
        ] {
            let _ = writeln!(
                md,
                "| {} | {what} | {:.2} MB | {:.2} MB | {:.2} MB | {:.2} MB | {:.2} MB |",
                d.label,
                mb(u.pss_kib as f64),
                mb(u.pss_anon_kib as f64),
                mb(u.pss_file_kib as f64),
                mb(u.private_kib as f64),
                mb(u.rss_kib as f64)
            );
        }
    }
    let series: Vec<Line> = r
        .density
        .iter()
        .map(|d| Line {
            label: d.label.clone(),
            color: plots::color_of(&d.variant),
            points: d
                .points
                .iter()
                .map(|p| (p.containers as f64, mb(p.total.pss_kib as f64)))
                .collect(),
        })
        .collect();
    plots::lines(
        &plot_dir.join("density.svg"),
        "Memory of one pod of sleeping containers (PSS)",
        ("containers in the pod", "MB"),
        None,
        &series,
    )?;
    let _ = writeln!(md, "\n![density](plots/density.svg)\n");
    Ok(())
}

fn module_size(md: &mut String, r: &Results, plot_dir: &Path) -> Result<()> {
    let _ = writeln!(md, "## Module size\n");
    let _ = writeln!(
        md,
        "Generated modules of about 100 KB and 5 MB: an empty `_start` and many functions of \
         integer arithmetic, so compile time grows with the size. Each is started {} times \
         through the API (start to removal) after one untimed warm-up; uncached removes the \
         precompile cache before every run.\n",
        r.sizes.module_runs
    );
    if r.module_size.is_empty() {
        return Ok(());
    }
    let _ = writeln!(
        md,
        "| module | functions | runtime | median | p90 |\n|---|---|---|---|---|"
    );
    for m in &r.module_size {
        let _ = writeln!(
            md,
            "| {} ({} bytes) | {} | {} | {:.0} ms | {:.0} ms |",
            m.size, m.bytes, m.functions, m.label, m.summary.median_ms, m.summary.p90_ms
        );
    }
    let mut sizes: Vec<String> = Vec::new();
    let mut variants: Vec<(String, String)> = Vec::new();
    for m in &r.module_size {
        if !sizes.contains(&m.size) {
            sizes.push(m.size.clone());
        }
        if !variants.iter().any(|(key, _)| *key == m.variant) {
            variants.push((m.variant.clone(), m.label.clone()));
        }
    }
    let series: Vec<Bars> = variants
        .iter()
        .map(|(key, label)| Bars {
            label: label.clone(),
            color: plots::color_of(key),
            values: sizes
                .iter()
                .map(|size| {
                    r.module_size
                        .iter()
                        .find(|m| m.size == *size && m.variant == *key)
                        .map(|m| (m.summary.median_ms, Some(m.summary.p90_ms)))
                })
                .collect(),
        })
        .collect();
    plots::grouped_bars(
        &plot_dir.join("module-size.svg"),
        "Start of a generated module by size (median; line: p90)",
        "milliseconds",
        &sizes,
        &series,
    )?;
    let _ = writeln!(md, "\n![module size](plots/module-size.svg)\n");
    Ok(())
}

fn debugging(md: &mut String, r: &Results) {
    let Some(d) = &r.debugging else {
        return;
    };
    let _ = writeln!(md, "## Debugging aids\n");
    let _ = writeln!(
        md,
        "What tracing and the guest profiler cost ([debugging.md](../docs/debugging.md)). \
         Tracing: `ctr run --rm` of the demo's `echo hi` on the wasmtime shim, precompile \
         cache filled, {} timed runs per case, each case on a containerd of its own that \
         differs only in `OTEL_EXPORTER_OTLP_ENDPOINT` in its environment (the answering \
         collector received {} spans). Profiling: `ctr run --rm` of the demo's `count {}` \
         (about two seconds of Wasm code), {} timed runs each. One untimed run before each \
         case.\n",
        d.tracing_runs,
        d.spans_received,
        crate::debugging::COUNT_MILLIONS,
        d.profiling_runs
    );
    let _ = writeln!(
        md,
        "| case | median | p90 | min | max |\n|---|---|---|---|---|"
    );
    for case in d.tracing.iter().chain(&d.profiling) {
        let s = &case.summary;
        let _ = writeln!(
            md,
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            case.label, s.median_ms, s.p90_ms, s.min_ms, s.max_ms
        );
    }
    md.push('\n');
}

fn missing(md: &mut String, r: &Results) {
    if r.wamr && r.failures.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Not measured\n");
    if !r.wamr {
        let _ = writeln!(
            md,
            "- WAMR: `containerd-shim-wamr-v1` was not built, so `io.containerd.wamr.v1` is absent \
             from every measurement."
        );
    }
    for f in &r.failures {
        let _ = writeln!(md, "- {} of {}: {}", f.measurement, f.variant, f.error);
    }
    md.push('\n');
}

fn how_to_run(md: &mut String) {
    let _ = writeln!(
        md,
        "## How to run\n\n`make bench` builds the shims and test images, starts a private \
         containerd under `target/bench-containerd` (namespace `wasm-bench`), measures, writes \
         `benches/results/latest.json`, this report and `benches/plots/*.svg`, and stops \
         containerd. Smaller runs for quick checks: `BENCH_RUNS` (cold starts per runtime, \
         default 30), `BENCH_THROUGHPUT` (containers per throughput level, default 500), \
         `BENCH_THROUGHPUT_UNCACHED` (default the same), `BENCH_DENSITY` (pod sizes, default \
         `1,10,50`), `BENCH_MODULE_RUNS` (default 10), `BENCH_NOTE` (a sentence for the report). \
         `cargo run --release -p shim-bench -- report benches/results/latest.json` redoes the \
         report from saved results. No timing is asserted anywhere: the report states the \
         targets and the numbers."
    );
}
