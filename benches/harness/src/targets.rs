//! The project's performance targets, checked against one run's results, with the measured
//! reasons when one is missed.

use crate::results::Results;
use crate::throughput::Point;

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
    let mut verdicts = vec![cold_start(results), throughput(results)];
    verdicts.push(density(results, "wasmtime-cached", "wasmtime"));
    if results.wamr {
        verdicts.push(density(results, "wamr", "WAMR"));
    }
    verdicts
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
        let shares = |p: &Point| {
            format!(
                "containerd {:.0} ms, the API client {:.0} ms, the rest (shim, container, kernel) \
                 {:.0} ms",
                p.containerd_cpu_ms_per_container,
                p.client_cpu_ms_per_container,
                p.cpu_ms_per_container
                    - p.containerd_cpu_ms_per_container
                    - p.client_cpu_ms_per_container
            )
        };
        let breakdown = if wasm.containerd_cpu_ms_per_container > 0.0 {
            format!(
                " Per container, wasmtime: {}; runc: {}. containerd's own share alone is {:.0}% \
                 of the {:.0} ms budget.",
                shares(wasm),
                shares(runc),
                wasm.containerd_cpu_ms_per_container
                    / (runc.cpu_ms_per_container / THROUGHPUT_RATIO)
                    * 100.0,
                runc.cpu_ms_per_container / THROUGHPUT_RATIO,
            )
        } else {
            String::new()
        };
        format!(
            "With {THROUGHPUT_PARALLELISM} containers in flight on {cores:.0} cores both runtimes \
             are bound by CPU: the machine spent {:.0} ms of CPU per wasmtime container and {:.0} \
             ms per runc container (containerd, shim, container setup and the workload together), \
             which caps them near {:.0}/s and {:.0}/s. Three times runc's rate would need at most \
             a third of runc's CPU per container ({:.0} ms); wasmtime uses {:.0}% of runc's.\
             {breakdown}",
            wasm.cpu_ms_per_container,
            runc.cpu_ms_per_container,
            cores * 1000.0 / wasm.cpu_ms_per_container,
            cores * 1000.0 / runc.cpu_ms_per_container,
            runc.cpu_ms_per_container / THROUGHPUT_RATIO,
            wasm.cpu_ms_per_container / runc.cpu_ms_per_container * 100.0,
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

fn density(results: &Results, variant: &str, engine: &str) -> Verdict {
    let target = format!(
        "each additional sleeping Wasm container ({engine}) in a pod under {:.0} MB (PSS)",
        DENSITY_LIMIT_BYTES / 1e6
    );
    let Some(wasm) = results.density(variant) else {
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
             which {:.2} MB anonymous memory (engine state, the loaded module, Wasm linear \
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
        measured: format!("{engine} {per_added_mb:.2} MB per added container{runc}"),
        met: Some(met),
        margin,
        why,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cold_start::ColdStart;
    use crate::config::Sizes;
    use crate::density::Density;
    use crate::machine::Machine;
    use crate::memory::Usage;
    use crate::stats::Summary;
    use crate::throughput::{Point, Throughput};

    fn summary(ms: f64) -> Summary {
        Summary::of(&[Duration::from_secs_f64(ms / 1e3)]).unwrap()
    }

    fn results() -> Results {
        Results {
            started_at: String::new(),
            duration_s: 0.0,
            machine: Machine {
                cores: 2,
                cpu_model: String::new(),
                memory_mib: 0,
                kernel: String::new(),
                cgroups: String::new(),
                containerd: String::new(),
                runc: String::new(),
                commit: String::new(),
                load_at_start: 0.0,
                load_at_end: 0.0,
            },
            note: None,
            sizes: Sizes {
                runs: 1,
                throughput: 1,
                throughput_uncached: 1,
                parallelism: vec![1, 16],
                density: vec![1, 2],
                module_runs: 1,
            },
            wamr: false,
            cold_start: Vec::new(),
            throughput: Vec::new(),
            density: Vec::new(),
            module_size: Vec::new(),
            debugging: None,
            failures: Vec::new(),
        }
    }

    fn cold(variant: &str, ctr_ms: f64, api_ms: f64) -> ColdStart {
        ColdStart {
            variant: variant.into(),
            label: variant.into(),
            ctr: summary(ctr_ms),
            api: summary(api_ms),
            ctr_lost_output: 0,
        }
    }

    fn rate(variant: &str, per_second: f64, cpu_ms: f64) -> Throughput {
        Throughput {
            variant: variant.into(),
            label: variant.into(),
            containers: 1,
            points: vec![Point {
                parallelism: THROUGHPUT_PARALLELISM,
                seconds: 1.0,
                per_second,
                cpu_ms_per_container: cpu_ms,
                containerd_cpu_ms_per_container: 0.0,
                client_cpu_ms_per_container: 0.0,
            }],
        }
    }

    fn pod(variant: &str, per_added_kib: f64) -> Density {
        Density {
            variant: variant.into(),
            label: variant.into(),
            points: Vec::new(),
            per_added_container_kib: Some(per_added_kib),
            member_process: Usage::default(),
            shim_process: Usage::default(),
        }
    }

    #[test]
    fn cold_start_needs_half_of_runc() {
        let mut r = results();
        r.cold_start = vec![
            cold("wasmtime-cached", 50.0, 40.0),
            cold("runc", 100.0, 80.0),
        ];
        assert_eq!(cold_start(&r).met, Some(true));
        r.cold_start[0] = cold("wasmtime-cached", 60.0, 40.0);
        let verdict = cold_start(&r);
        assert_eq!(verdict.met, Some(false));
        assert!(
            verdict.margin.starts_with("10 ms over"),
            "{}",
            verdict.margin
        );
        assert!(verdict.why.unwrap().contains("ctr adds about 20 ms"));
    }

    #[test]
    fn throughput_needs_three_times_runc() {
        let mut r = results();
        r.throughput = vec![
            rate("wasmtime-cached", 30.0, 60.0),
            rate("runc", 10.0, 200.0),
        ];
        assert_eq!(throughput(&r).met, Some(true));
        r.throughput[0] = rate("wasmtime-cached", 20.0, 100.0);
        let verdict = throughput(&r);
        assert_eq!(verdict.met, Some(false));
        assert!(verdict.why.unwrap().contains("wasmtime uses 50% of runc's"));
    }

    #[test]
    fn density_limit_is_5_mb_per_added_container() {
        let mut r = results();
        r.density = vec![pod("wasmtime-cached", 4_800.0)];
        assert_eq!(density(&r, "wasmtime-cached", "wasmtime").met, Some(true));
        r.density = vec![pod("wasmtime-cached", 4_900.0)];
        assert_eq!(density(&r, "wasmtime-cached", "wasmtime").met, Some(false));
    }

    #[test]
    fn missing_numbers_are_not_a_verdict() {
        let r = results();
        assert!(evaluate(&r).iter().all(|v| v.met.is_none()));
    }
}
