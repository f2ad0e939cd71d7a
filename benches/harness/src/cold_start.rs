//! Cold start: the wall time of one short container (`echo hi`), start to removal, through
//! `ctr run --rm` and through the API directly (the same steps without ctr's own process,
//! FIFOs and output copying).

use std::time::{Duration, Instant};

use anyhow::{Context, Error, Result, bail};
use serde::{Deserialize, Serialize};

use shim_conformance::api::NewContainer;

use crate::bench::Bench;
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
    /// Timed ctr runs that exited 0 but whose output ctr did not print: the container ran,
    /// ctr lost what it wrote (seen now and then with runc's shim and a container that
    /// exits at once).
    pub ctr_lost_output: usize,
}

/// The samples of one variant so far.
struct Samples<'a> {
    variant: &'a Variant,
    ctr: Vec<Duration>,
    api: Vec<Duration>,
    ctr_lost_output: usize,
}

impl Samples<'_> {
    /// One round: a run through ctr, then one through the API.
    fn round(&mut self, bench: &Bench) -> Result<()> {
        bench.before_each(self.variant)?;
        let (elapsed, printed) = run_ctr(bench, self.variant)?;
        self.ctr.push(elapsed);
        if !printed {
            self.ctr_lost_output += 1;
        }
        bench.before_each(self.variant)?;
        self.api.push(run_api(bench, self.variant, &COMMAND)?);
        Ok(())
    }
}

/// Times every variant, round by round: each round runs each variant once through ctr and
/// once through the API, so that load from elsewhere on the machine falls on all variants
/// alike. A variant that fails is dropped from later rounds and returned with its error.
pub fn measure(bench: &Bench, variants: &[Variant]) -> (Vec<ColdStart>, Vec<(Variant, Error)>) {
    let mut failed: Vec<(Variant, Error)> = Vec::new();
    let mut samples: Vec<Samples> = Vec::new();
    for variant in variants {
        // Untimed: brings binaries into the page cache and, for a cached variant, fills
        // the cache.
        match run_ctr(bench, variant).context("warm-up run") {
            Ok(_) => samples.push(Samples {
                variant,
                ctr: Vec::new(),
                api: Vec::new(),
                ctr_lost_output: 0,
            }),
            Err(e) => failed.push((variant.clone(), e)),
        }
    }
    for _ in 0..bench.sizes.runs {
        // In variant order, an uncached run (which compiles and stores the module) comes
        // right before the cached one, which then finds it in the cache.
        samples.retain_mut(|variant| match variant.round(bench) {
            Ok(()) => true,
            Err(e) => {
                failed.push((variant.variant.clone(), e));
                false
            }
        });
    }
    let measured = samples
        .into_iter()
        .filter_map(|s| {
            Some(ColdStart {
                variant: s.variant.key.to_owned(),
                label: s.variant.label.to_owned(),
                ctr: Summary::of(&s.ctr)?,
                api: Summary::of(&s.api)?,
                ctr_lost_output: s.ctr_lost_output,
            })
        })
        .collect();
    (measured, failed)
}

/// `ctr run --rm … echo hi`: its wall time, and whether it printed `hi`. ctr exits with the
/// container's status, so a container that failed is an error.
fn run_ctr(bench: &Bench, variant: &Variant) -> Result<(Duration, bool)> {
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
    let started = Instant::now();
    let output = bench.containerd.ctr(&args).output()?;
    let elapsed = started.elapsed();
    output.success()?;
    if !output.stdout.trim().is_empty() && output.stdout.trim() != "hi" {
        bail!(
            "container {id} ({}) printed {:?} instead of \"hi\"",
            variant.runtime,
            output.stdout
        );
    }
    Ok((elapsed, output.stdout.trim() == "hi"))
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
    bench.api.run_to_exit(&template, &new)?;
    Ok(started.elapsed())
}
