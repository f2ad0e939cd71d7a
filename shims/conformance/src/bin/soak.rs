//! `make soak`: many short containers and a pod of long-running ones through the private
//! containerd, then a count of what is left. Not part of `make test`.
//!
//! 1. A pod of `SOAK_LONG` (50) containers sleeping, all in one shim (a sandbox and members
//!    that carry its `io.kubernetes.cri.sandbox-id`).
//! 2. `SOAK_SHORT` (1,000) short containers (`echo`) at parallelism `SOAK_PARALLEL` (16),
//!    each joining the same pod, so the pod's shim creates and deletes every one of them;
//!    its memory and descriptors are sampled as they go, from a baseline taken after one
//!    warm-up container (the shim keeps one descriptor it opens on its first create).
//! 3. The long ones must still run; then they are stopped and deleted, and what is left is
//!    counted against the state before step 1: processes, mounts in containerd's namespace,
//!    cgroups, state directories, bundles, shim sockets.
//!
//! The runtime is `SOAK_RUNTIME` (wasmtime); `SOAK_DEADLINE` (seconds, 1200) bounds the run.
//! Figures go to stdout and to `target/soak/report.md` and `target/soak/results.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shim_conformance::container::{
    CONTAINER_TYPE_ANNOTATION, Container, SANDBOX_ID_ANNOTATION, Status,
};
use shim_conformance::ctr::Ctr;
use shim_conformance::engines::{ENGINES, Runtime};
use shim_conformance::environment::containerd;
use shim_conformance::images::WASI_DEMO_APP;
use shim_conformance::leftovers::{cgroup_roots, shims_of};
use shim_conformance::procfs;

fn main() -> Result<()> {
    let settings = Settings::from_env()?;
    let report = soak(&settings)?;
    let markdown = report.markdown(&settings);
    println!("{markdown}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/soak");
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::write(dir.join("report.md"), &markdown)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&report.json(&settings))?,
    )?;
    eprintln!("soak: wrote {}", dir.join("report.md").display());
    if !report.verdicts().iter().all(|(_, ok)| *ok) {
        bail!("the soak run found leaks or failures (see the report)");
    }
    Ok(())
}

struct Settings {
    runtime: &'static Runtime,
    short: usize,
    parallel: usize,
    long: usize,
    deadline: Duration,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let number = |name: &str, default: u64| -> Result<u64> {
            match std::env::var(name) {
                Ok(value) => value
                    .parse()
                    .with_context(|| format!("{name}={value:?} is not a number")),
                Err(_) => Ok(default),
            }
        };
        let name = std::env::var("SOAK_RUNTIME").unwrap_or_else(|_| "wasmtime".to_owned());
        let runtime = ENGINES
            .iter()
            .find(|r| r.name == name)
            .with_context(|| format!("SOAK_RUNTIME={name}: no such engine"))?;
        Ok(Self {
            runtime,
            short: number("SOAK_SHORT", 1000)? as usize,
            parallel: number("SOAK_PARALLEL", 16)?.max(1) as usize,
            long: number("SOAK_LONG", 50)?.max(1) as usize,
            deadline: Duration::from_secs(number("SOAK_DEADLINE", 1200)?),
        })
    }
}

/// What is on the node that containers leave when they leak.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Census {
    /// Processes in the test namespace's cgroups, and shim processes.
    processes: usize,
    /// Mount points in containerd's mount namespace.
    mounts: usize,
    /// Cgroup directories of the test namespace, over every hierarchy.
    cgroups: usize,
    /// Entries in the runtime's state directory for the namespace.
    state_dirs: usize,
    /// Bundles of the namespace.
    bundles: usize,
    /// Shim sockets.
    sockets: usize,
}

impl Census {
    /// Counts what belongs to containers whose id starts with `prefix` (other test runs on
    /// the machine share the cgroup hierarchy and the namespace name); sockets, whose names
    /// are hashes, are counted in this containerd's own `/run/containerd/s`.
    fn take(runtime: &Runtime, prefix: &str) -> Result<Self> {
        let env = containerd();
        let namespace = &env.namespace;
        let ours = |name: &str| name.starts_with(prefix);
        let processes = procfs::pids()
            .into_iter()
            .filter(|pid| procfs::alive(*pid).is_some())
            .filter(|pid| {
                let in_cgroup = procfs::cgroups(*pid)
                    .iter()
                    .any(|path| path.split('/').any(ours));
                let args = procfs::cmdline(*pid);
                let shim =
                    procfs::is_shim(&args) && args.windows(2).any(|w| w[0] == "-id" && ours(&w[1]));
                in_cgroup || shim
            })
            .count();
        let mounts = procfs::mount_points(Path::new(&format!("/proc/{}/mountinfo", env.pid())))?
            .iter()
            .filter(|point| point.split('/').any(ours))
            .count();
        let cgroups = cgroup_roots()
            .iter()
            .map(|root| count_named(&root.join(namespace), prefix))
            .sum();
        let state_dirs = count_named(
            &env.path("/run/containerd")
                .join(runtime.name)
                .join(namespace),
            prefix,
        );
        let bundle_root = env.bundle_dir(prefix);
        let bundles = bundle_root
            .parent()
            .map_or(0, |dir| count_named(dir, prefix));
        let sockets = count_named(&env.path("/run/containerd/s"), "");
        Ok(Self {
            processes,
            mounts,
            cgroups,
            state_dirs,
            bundles,
            sockets,
        })
    }

    fn fields(&self) -> [(&'static str, usize); 6] {
        [
            ("processes", self.processes),
            ("mounts", self.mounts),
            ("cgroups", self.cgroups),
            ("state dirs", self.state_dirs),
            ("bundles", self.bundles),
            ("shim sockets", self.sockets),
        ]
    }
}

/// Entries of `dir` whose name starts with `prefix`.
fn count_named(dir: &Path, prefix: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .count()
    })
}

/// The pod shim's resident memory (KiB) and open descriptors.
#[derive(Debug, Clone, Copy)]
struct ShimSample {
    after: usize,
    rss_kib: u64,
    fds: usize,
}

fn sample_shim(pid: u32, after: usize) -> Result<ShimSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("the pod's shim {pid} is gone"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in the shim's status")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok(ShimSample {
        after,
        rss_kib,
        fds,
    })
}

struct Report {
    before: Census,
    /// With the pod running: proves the census sees what it counts.
    during: Census,
    after: Census,
    samples: Vec<ShimSample>,
    short_ok: usize,
    short_failed: usize,
    first_failures: Vec<String>,
    latencies: Vec<Duration>,
    short_elapsed: Duration,
    long_running_after: usize,
    long_total: usize,
    total: Duration,
}

fn soak(settings: &Settings) -> Result<Report> {
    let began = Instant::now();
    let runtime = settings.runtime;
    WASI_DEMO_APP.ensure_imported()?;
    let run_id = std::process::id();
    let prefix = format!("soak-{run_id}-");
    let before = Census::take(runtime, &prefix)?;

    // 1. The pod.
    let sandbox = Container::new(&format!("soak-{run_id}-pod"), runtime, &WASI_DEMO_APP);
    let pod = sandbox.id().to_owned();
    let sandbox = sandbox
        .annotation(SANDBOX_ID_ANNOTATION, &pod)
        .annotation(CONTAINER_TYPE_ANNOTATION, "sandbox");
    let args = ["/wasi-demo-app.wasm", "sleep", "3600"];
    sandbox.run_detached(&args)?;
    let mut long = vec![sandbox];
    for n in 1..settings.long {
        let member = Container::new(&format!("soak-{run_id}-long-{n}"), runtime, &WASI_DEMO_APP)
            .in_sandbox(&pod)
            .annotation(CONTAINER_TYPE_ANNOTATION, "container");
        member.run_detached(&args)?;
        long.push(member);
    }
    for container in &long {
        container.wait_for_status(Status::Running, Duration::from_secs(30))?;
    }
    let shim = match shims_of(&pod)[..] {
        [shim] => shim,
        ref shims => bail!("the pod {pod} has shims {shims:?}, expected one"),
    };
    // One short container first: the shim opens one descriptor (a handle on `/`) on its
    // first create and keeps it; the baseline is taken after it.
    let (_, warm_up) = run_short(runtime, &pod, run_id, settings.short);
    if let Some(failure) = warm_up {
        bail!("the warm-up container failed: {failure}");
    }
    let mut samples = vec![sample_shim(shim, 0)?];
    let during = Census::take(runtime, &prefix)?;
    eprintln!(
        "soak: {} long-running containers in pod {pod} (shim {shim}); {} short ones at parallelism {}",
        long.len(),
        settings.short,
        settings.parallel
    );

    // 2. The short containers, in the pod.
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(Duration, Option<String>)>> = Mutex::new(Vec::new());
    let sampled: Mutex<Vec<ShimSample>> = Mutex::new(Vec::new());
    let short_began = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..settings.parallel {
            scope.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= settings.short || began.elapsed() > settings.deadline {
                        return;
                    }
                    let outcome = run_short(runtime, &pod, run_id, n);
                    outcomes.lock().unwrap().push(outcome);
                    let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if finished.is_multiple_of(100) {
                        if let Ok(sample) = sample_shim(shim, finished) {
                            sampled.lock().unwrap().push(sample);
                        }
                        eprintln!("soak: {finished} short containers done");
                    }
                }
            });
        }
    });
    let short_elapsed = short_began.elapsed();
    let mut more = sampled.into_inner().unwrap();
    more.sort_by_key(|s| s.after);
    samples.extend(more);
    let finished = done.load(Ordering::SeqCst);
    if samples.last().is_none_or(|s| s.after != finished) {
        samples.push(sample_shim(shim, finished)?);
    }
    let outcomes = outcomes.into_inner().unwrap();
    let latencies: Vec<Duration> = outcomes.iter().map(|(d, _)| *d).collect();
    let failures: Vec<String> = outcomes.iter().filter_map(|(_, e)| e.clone()).collect();

    // 3. The long ones still run; then everything goes.
    let long_running_after = long
        .iter()
        .filter(|c| {
            c.task()
                .ok()
                .flatten()
                .is_some_and(|t| t.status == Status::Running)
        })
        .count();
    for container in long.iter().rev() {
        let _ = container.kill("SIGKILL");
    }
    for container in long.iter().rev() {
        let _ = container.wait_for_status(Status::Stopped, Duration::from_secs(30));
        let _ = container.delete_task();
        let _ = container.delete();
    }
    drop(long);
    // Shims exit and containerd removes bundles after answering: let the teardown settle.
    let settle = Instant::now();
    let after = loop {
        let after = Census::take(runtime, &prefix)?;
        if after == before || settle.elapsed() > Duration::from_secs(10) {
            break after;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Ok(Report {
        before,
        during,
        after,
        samples,
        short_ok: outcomes.len() - failures.len(),
        short_failed: failures.len(),
        first_failures: failures.into_iter().take(5).collect(),
        latencies,
        short_elapsed,
        long_running_after,
        long_total: settings.long,
        total: began.elapsed(),
    })
}

/// One short container in the pod: `echo`, checked, with its time.
fn run_short(runtime: &Runtime, pod: &str, run_id: u32, n: usize) -> (Duration, Option<String>) {
    let id = format!("soak-{run_id}-short-{n}");
    let began = Instant::now();
    let out = Ctr::new([
        "run",
        "--rm",
        "--runtime",
        runtime.runtime_type,
        "--platform",
        WASI_DEMO_APP.platform,
        "--annotation",
        &format!("io.kubernetes.cri.sandbox-id={pod}"),
        "--annotation",
        "io.kubernetes.cri.container-type=container",
        WASI_DEMO_APP.reference,
        &id,
        "/wasi-demo-app.wasm",
        "echo",
        &id,
    ])
    .timeout(Duration::from_secs(60))
    .output();
    let elapsed = began.elapsed();
    let failure = match out {
        Ok(out) => out
            .expect(0, &format!("{id}\n"))
            .err()
            .map(|e| format!("{e:#}")),
        Err(e) => Some(format!("{e:#}")),
    };
    if failure.is_some() {
        // Whatever the failure left, remove it so the census counts only real leaks.
        let _ = Ctr::new(["task", "delete", "--force", &id]).output();
        let _ = Ctr::new(["container", "delete", &id]).output();
    }
    (elapsed, failure)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at]
}

/// Growth of the shim's memory that is not a leak: allocator caches and the like. Measured
/// growth per short container above this is a leak.
const RSS_NOISE_KIB: i64 = 16 * 1024;

impl Report {
    fn rss_growth_kib(&self) -> i64 {
        let first = self.samples.first().map_or(0, |s| s.rss_kib as i64);
        let last = self.samples.last().map_or(0, |s| s.rss_kib as i64);
        last - first
    }

    fn fd_growth(&self) -> i64 {
        let first = self.samples.first().map_or(0, |s| s.fds as i64);
        let last = self.samples.last().map_or(0, |s| s.fds as i64);
        last - first
    }

    fn verdicts(&self) -> Vec<(String, bool)> {
        let mut verdicts = vec![
            (
                format!("{} short containers failed", self.short_failed),
                self.short_failed == 0,
            ),
            (
                format!(
                    "{} of the {} long-running containers still ran at the end",
                    self.long_running_after, self.long_total
                ),
                self.long_running_after == self.long_total,
            ),
            (
                format!("shim descriptors grew by {}", self.fd_growth()),
                self.fd_growth() <= 0,
            ),
            (
                format!(
                    "shim memory grew by {} KiB (noise allowed: {RSS_NOISE_KIB} KiB)",
                    self.rss_growth_kib()
                ),
                self.rss_growth_kib() <= RSS_NOISE_KIB,
            ),
        ];
        let unseen: Vec<&str> = self
            .during
            .fields()
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(name, _)| *name)
            .collect();
        verdicts.push((
            format!("the census saw the running pod (nothing unseen: {unseen:?})"),
            unseen.is_empty(),
        ));
        for ((name, before), (_, after)) in self.before.fields().iter().zip(self.after.fields()) {
            verdicts.push((
                format!("{name}: {before} before, {after} after"),
                after <= *before,
            ));
        }
        verdicts
    }

    fn markdown(&self, settings: &Settings) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let mut text = format!(
            "# Soak run\n\n`make soak` ({} runtime): {} long-running containers in one pod, \
             {} short containers at parallelism {} joining the same pod's shim. Total {:.1} s.\n\n",
            settings.runtime.runtime_type,
            settings.long,
            settings.short,
            settings.parallel,
            self.total.as_secs_f64()
        );
        text += &format!(
            "## Short containers\n\n| | |\n|---|---|\n| succeeded | {} |\n| failed | {} |\n\
             | wall time | {:.1} s ({:.1} containers/s) |\n| latency p50 / p95 / max | {:.0} / {:.0} / {:.0} ms |\n\n",
            self.short_ok,
            self.short_failed,
            self.short_elapsed.as_secs_f64(),
            (self.short_ok + self.short_failed) as f64
                / self.short_elapsed.as_secs_f64().max(0.001),
            percentile(&sorted, 0.5).as_secs_f64() * 1000.0,
            percentile(&sorted, 0.95).as_secs_f64() * 1000.0,
            percentile(&sorted, 1.0).as_secs_f64() * 1000.0,
        );
        for failure in &self.first_failures {
            text += &format!("- failure: {failure}\n");
        }
        text += "\n## The pod's shim\n\n| after short containers | RSS (KiB) | descriptors |\n|---|---|---|\n";
        for sample in &self.samples {
            text += &format!(
                "| {} | {} | {} |\n",
                sample.after, sample.rss_kib, sample.fds
            );
        }
        text += "\n## On the node: before the pod, with the pod running, after everything was deleted\n\n| | before | running | after |\n|---|---|---|---|\n";
        for (((name, before), (_, during)), (_, after)) in self
            .before
            .fields()
            .iter()
            .zip(self.during.fields())
            .zip(self.after.fields())
        {
            text += &format!("| {name} | {before} | {during} | {after} |\n");
        }
        text += "\n## Verdict\n\n";
        for (what, ok) in self.verdicts() {
            text += &format!("- {} {what}\n", if ok { "ok:" } else { "FAIL:" });
        }
        text
    }

    fn json(&self, settings: &Settings) -> serde_json::Value {
        let census = |c: &Census| {
            c.fields()
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                .collect::<BTreeMap<_, _>>()
        };
        let mut sorted = self.latencies.clone();
        sorted.sort();
        serde_json::json!({
            "runtime": settings.runtime.runtime_type,
            "long": settings.long,
            "short": settings.short,
            "parallel": settings.parallel,
            "short_ok": self.short_ok,
            "short_failed": self.short_failed,
            "short_seconds": self.short_elapsed.as_secs_f64(),
            "latency_ms": {
                "p50": percentile(&sorted, 0.5).as_secs_f64() * 1000.0,
                "p95": percentile(&sorted, 0.95).as_secs_f64() * 1000.0,
                "max": percentile(&sorted, 1.0).as_secs_f64() * 1000.0,
            },
            "shim_samples": self.samples.iter().map(|s| serde_json::json!({
                "after": s.after, "rss_kib": s.rss_kib, "fds": s.fds
            })).collect::<Vec<_>>(),
            "long_running_after": self.long_running_after,
            "before": census(&self.before),
            "during": census(&self.during),
            "after": census(&self.after),
            "verdicts": self.verdicts().into_iter().map(|(w, ok)| serde_json::json!({"what": w, "ok": ok})).collect::<Vec<_>>(),
            "total_seconds": self.total.as_secs_f64(),
        })
    }
}
