//! The project's performance targets, checked against one run's results, with the measured
//! reasons when one is missed.

use crate::results::Results;

/// Cached wasmtime's cold start (`ctr run --rm`) at most this share of runc's.
pub const COLD_START_RATIO: f64 = 0.5;
/// wasmtime's containers per second at this parallelism …
pub const THROUGHPUT_PARALLELISM: usize = 16;
/// … at least this many times runc's.
pub const THROUGHPUT_RATIO: f64 = 3.0;
/// Each additional sleeping Wasm container in a pod under this much PSS (5 MB).
pub const DENSITY_LIMIT_BYTES: f64 = 5_000_000.0;

/// One target and how the run compares to it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    /// `None` when the run has no numbers for it.
    pub met: Option<bool>,
    pub margin: String,
    /// For a missed target: what the numbers say about the cause.
    pub why: Option<String>,
}

pub fn evaluate(results: &Results) -> Vec<Verdict> {
    vec![cold_start(results), throughput(results), density(results)]
}

fn not_measured(target: String, what: &str) -> Verdict {
    Verdict {
        target,
        measured: format!("not measured ({what} failed or was not run; see below)"),
        met: None,
        margin: "—".into(),
        why: None,
    }
}

pub fn mb(kib: f64) -> f64 {
    kib * 1024.0 / 1e6
}

fn cold_start(results: &Results) -> Verdict {
    let target = format!(
        "cached wasmtime cold start (`ctr run --rm`, median) at most {:.0}% of runc's",
        COLD_START_RATIO * 100.0
    );
    let (Some(wasm), Some(runc)) = (
        results.cold_start("wasmtime-cached"),
        results.cold_start("runc"),
    ) else {
        return not_measured(target, "the cold-start measurement");
    };
    let (w, r) = (wasm.ctr.median_ms, runc.ctr.median_ms);
    let limit = r * COLD_START_RATIO;
    let met = w <= limit;
    let margin = if met {
        format!("{:.0} ms under the limit of {limit:.0} ms", limit - w)
    } else {
        format!(
            "{:.0} ms over the limit of {limit:.0} ms ({:.1}x too slow)",
            w - limit,
            w / limit
        )
    };
    let why = (!met).then(|| {
        let (wa, ra) = (wasm.api.median_ms, runc.api.median_ms);
        let mut why = format!(
            "Without ctr (containerd's API directly) cached wasmtime takes {wa:.0} ms and runc \
             {ra:.0} ms (ratio {:.2}); ctr adds about {:.0} ms to each start, the same for both. \
             Both go through the same containerd steps (container record, snapshot, shim start, \
             task create/start/wait/delete) and build the same kind of Linux container \
             (namespaces, cgroup, rootfs mount, pivot_root: the Wasm shim does it with youki's \
             libcontainer, runc with its own code), so halving runc's time would need that shared \
             part to cost less than half of what it costs runc.",
            wa / ra,
            w - wa
        );
        if let Some(uncached) = results.cold_start("wasmtime-uncached") {
            why.push_str(&format!(
                " The module is not the cost: uncached wasmtime takes {:.0} ms, so the \
                 precompile cache already removes {:.0} ms of compiling.",
                uncached.ctr.median_ms,
                uncached.ctr.median_ms - w
            ));
        }
        why
    });
    Verdict {
        target,
        measured: format!(
            "wasmtime cached {w:.0} ms, runc {r:.0} ms: {:.0}% of runc's",
            w / r * 100.0
        ),
        met: Some(met),
        margin,
        why,
    }
}

fn throughput(results: &Results) -> Verdict {
    let target = format!(
        "throughput at parallelism {THROUGHPUT_PARALLELISM}: cached wasmtime at least {THROUGHPUT_RATIO:.0}x runc's containers per second"
    );
    let at = |variant: &str| {
        results
            .throughput(variant)?
            .points
            .iter()
            .find(|p| p.parallelism == THROUGHPUT_PARALLELISM)
    };
    let (Some(wasm), Some(runc)) = (at("wasmtime-cached"), at("runc")) else {
        return not_measured(target, "the throughput measurement");
    };
    let ratio = wasm.per_second / runc.per_second;
    let met = ratio >= THROUGHPUT_RATIO;
    let needed = runc.per_second * THROUGHPUT_RATIO;
    let margin = if met {
        format!(
            "{:.1}/s above the {needed:.1}/s needed",
            wasm.per_second - needed
        )
    } else {
        format!(
            "{:.1}/s short of the {needed:.1}/s needed ({:.0}% of it)",
            needed - wasm.per_second,
            wasm.per_second / needed * 100.0
        )
    };
    let cores = results.machine.cores.max(1) as f64;
    let why = (!met).then(|| {
        format!(
            "With {THROUGHPUT_PARALLELISM} containers in flight on {cores:.0} cores both runtimes \
             are bound by CPU: the machine spent {:.0} ms of CPU per wasmtime container and {:.0} \
             ms per runc container (containerd, shim, container setup and the workload together), \
             which caps them near {:.0}/s and {:.0}/s. Three times runc's rate needs a third of \
             runc's CPU per container, and most of that CPU goes to steps both share (containerd's \
             bookkeeping, the shim process, namespaces, cgroup and mounts).",
            wasm.cpu_ms_per_container,
            runc.cpu_ms_per_container,
            cores * 1000.0 / wasm.cpu_ms_per_container,
            cores * 1000.0 / runc.cpu_ms_per_container,
        )
    });
    Verdict {
        target,
        measured: format!(
            "wasmtime cached {:.1}/s, runc {:.1}/s: {ratio:.2}x",
            wasm.per_second, runc.per_second
        ),
        met: Some(met),
        margin,
        why,
    }
}

fn density(results: &Results) -> Verdict {
    let target = format!(
        "each additional sleeping Wasm container in a pod under {:.0} MB (PSS)",
        DENSITY_LIMIT_BYTES / 1e6
    );
    let Some(wasm) = results.density("wasmtime-cached") else {
        return not_measured(target, "the density measurement");
    };
    let Some(per_added) = wasm.per_added_container_kib else {
        return not_measured(target, "a density measurement with two pod sizes");
    };
    let per_added_mb = mb(per_added);
    let limit_mb = DENSITY_LIMIT_BYTES / 1e6;
    let met = per_added_mb < limit_mb;
    let margin = if met {
        format!("{:.2} MB under", limit_mb - per_added_mb)
    } else {
        format!("{:.2} MB over", per_added_mb - limit_mb)
    };
    let why = (!met).then(|| {
        let member = wasm.member_process;
        format!(
            "Every container is its own process: one member's process has a PSS of {:.2} MB, of \
             which {:.2} MB anonymous memory (engine state, the loaded module's code, Wasm linear \
             memory, heap) and {:.2} MB file pages (the shim binary, shared among all processes \
             that map it); {:.2} MB of it is private to that process.",
            mb(member.pss_kib as f64),
            mb(member.pss_anon_kib as f64),
            mb(member.pss_file_kib as f64),
            mb(member.private_kib as f64),
        )
    });
    let runc = results
        .density("runc")
        .and_then(|d| d.per_added_container_kib)
        .map(|kib| format!(" (runc: {:.2} MB)", mb(kib)))
        .unwrap_or_default();
    Verdict {
        target,
        measured: format!("wasmtime {per_added_mb:.2} MB per added container{runc}"),
        met: Some(met),
        margin,
        why,
    }
}
