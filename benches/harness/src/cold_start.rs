//! Cold start: the wall time of one short container (`echo hi`), start to removal, through
//! `ctr run --rm` and through the API directly (the same steps without ctr's own process,
//! FIFOs and output copying).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::api::NewContainer;
use crate::bench::Bench;
use crate::ctr::ctr;
use crate::stats::Summary;
use crate::variants::Variant;

const COMMAND: [&str; 2] = ["echo", "hi"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColdStart {
    pub variant: String,
    pub label: String,
    /// `ctr run --rm`.
    pub ctr: Summary,
    /// containerd's API: container, snapshot, task create/start/wait/delete, removal.
    pub api: Summary,
}

pub fn measure(bench: &Bench, variant: &Variant) -> Result<ColdStart> {
    // Untimed: brings binaries into the page cache and, for a cached variant, fills the cache.
    run_ctr(bench, variant).context("warm-up run")?;
    let ctr_samples = (0..bench.sizes.runs)
        .map(|_| {
            bench.before_each(variant)?;
            run_ctr(bench, variant)
        })
        .collect::<Result<Vec<_>>>()?;
    let api_samples = (0..bench.sizes.runs)
        .map(|_| {
            bench.before_each(variant)?;
            run_api(bench, variant, &COMMAND)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ColdStart {
        variant: variant.key.to_owned(),
        label: variant.label.to_owned(),
        ctr: Summary::of(&ctr_samples).context("no ctr samples")?,
        api: Summary::of(&api_samples).context("no API samples")?,
    })
}

fn run_ctr(bench: &Bench, variant: &Variant) -> Result<Duration> {
    let id = bench.unique_id(&format!("cold-ctr-{}", variant.key));
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--runtime",
        variant.runtime,
        "--platform",
        &variant.image.platform,
        &variant.image.reference,
        &id,
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    args.extend(variant.image.args(&COMMAND));
    let output = ctr(&bench.containerd, &args)?;
    if output.stdout.trim() != "hi" {
        bail!(
            "container {id} ({}) printed {:?} instead of \"hi\"",
            variant.runtime,
            output.stdout
        );
    }
    Ok(output.elapsed)
}

/// One container running `command` through the API, timed from the container record's
/// creation to its removal.
pub fn run_api(bench: &Bench, variant: &Variant, command: &[&str]) -> Result<Duration> {
    let template = bench.template(&variant.image)?;
    let id = bench.unique_id(&format!("cold-api-{}", variant.key));
    let args = variant.image.args(command);
    let new = NewContainer {
        id: &id,
        runtime: variant.runtime,
        args: &args,
        annotations: &[],
    };
    let started = Instant::now();
    bench
        .runtime
        .block_on(bench.api.run_to_exit(&template, &new))?;
    Ok(started.elapsed())
}
