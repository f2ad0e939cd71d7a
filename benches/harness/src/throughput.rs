//! Throughput: many short containers (`echo hi`) through the API, a fixed number at a time,
//! in containers per second; with the machine's busy CPU time per container alongside, since
//! at high parallelism the cores are what limits it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use shim_conformance::api::{Api, NewContainer, Template};

use crate::bench::Bench;
use crate::cpu;
use crate::variants::{Cache, Variant};

const COMMAND: [&str; 2] = ["echo", "hi"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub variant: String,
    pub label: String,
    /// Containers per parallelism level.
    pub containers: usize,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub parallelism: usize,
    pub seconds: f64,
    pub per_second: f64,
    /// Busy CPU time of the whole machine during the level, per container.
    pub cpu_ms_per_container: f64,
    /// Of that, containerd's own process (not its children).
    #[serde(default)]
    pub containerd_cpu_ms_per_container: f64,
    /// Of that, this benchmark's process: the client that drives containerd's API.
    #[serde(default)]
    pub client_cpu_ms_per_container: f64,
}

pub fn measure(bench: &Bench, variant: &Variant) -> Result<Throughput> {
    let containers = match variant.cache {
        Cache::Uncached => bench.sizes.throughput_uncached,
        Cache::Cached | Cache::None => bench.sizes.throughput,
    };
    let template = bench.template(&variant.image)?;
    let containerd_pid = bench.containerd.pid()?;
    let client_pid = std::process::id();
    // Untimed: fills the cache of a cached variant, warms the page cache.
    crate::cold_start::run_api(bench, variant, &COMMAND).context("warm-up run")?;
    // Removing the cache before each container cannot work with many in flight (one
    // would find what another just wrote): the cache is made unusable instead.
    let _blocked = match variant.cache {
        Cache::Uncached => Some(bench.containerd.block_cache()?),
        Cache::Cached | Cache::None => None,
    };
    let points = bench
        .sizes
        .parallelism
        .iter()
        .map(|&parallelism| {
            let ids: Vec<String> = (0..containers)
                .map(|_| bench.unique_id(&format!("tput-{}-p{parallelism}", variant.key)))
                .collect();
            let busy_before = cpu::busy_ms()?;
            let containerd_before = cpu::process_ms(containerd_pid)?;
            let client_before = cpu::process_ms(client_pid)?;
            let started = Instant::now();
            run_all(&bench.api, &template, variant, ids, parallelism)?;
            let seconds = started.elapsed().as_secs_f64();
            let per_container = |ms: f64| ms / containers as f64;
            Ok(Point {
                parallelism,
                seconds,
                per_second: containers as f64 / seconds,
                cpu_ms_per_container: per_container(cpu::busy_ms()? - busy_before),
                containerd_cpu_ms_per_container: per_container(
                    cpu::process_ms(containerd_pid)? - containerd_before,
                ),
                client_cpu_ms_per_container: per_container(
                    cpu::process_ms(client_pid)? - client_before,
                ),
            })
        })
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("{} containers of {}", containers, variant.label))?;
    Ok(Throughput {
        variant: variant.key.to_owned(),
        label: variant.label.to_owned(),
        containers,
        points,
    })
}

/// Runs one container per id to completion, `parallelism` at a time (one thread each, taking
/// the next id when its container is gone); no new container starts after the first failure.
fn run_all(
    api: &Api,
    template: &Template,
    variant: &Variant,
    ids: Vec<String>,
    parallelism: usize,
) -> Result<()> {
    let args = variant.image.args(&COMMAND);
    let pending = Mutex::new(ids.into_iter());
    let failed = AtomicBool::new(false);
    let next_id = || {
        let mut pending = pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failed.load(Ordering::SeqCst) {
            None
        } else {
            pending.next()
        }
    };
    let run_in_turn = || -> Result<()> {
        while let Some(id) = next_id() {
            let new = NewContainer {
                id: &id,
                runtime: variant.runtime,
                args: &args,
                annotations: &[],
            };
            if let Err(e) = api.run_to_exit(template, &new) {
                failed.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let runners: Vec<_> = (0..parallelism).map(|_| scope.spawn(run_in_turn)).collect();
        runners
            .into_iter()
            .map(|runner| {
                runner
                    .join()
                    .map_err(|_| anyhow!("a thread running containers panicked"))?
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}
