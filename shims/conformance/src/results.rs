//! A machine-readable record of what the suite found, from which `docs/engines.md` is made
//! (the `engines-table` binary, which `make test` runs after the suite).
//!
//! When [`RESULTS_ENV`] names a file, every target a test checks appends one JSON line
//! (a [`Record`]) to it, and so does every engine whose shim is not built, with the reason.
//! `scripts/test.sh` sets it to `target/conformance-results.jsonl`, and runs the suite on
//! several containerd versions into that one file: each line names its containerd.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::engines::{report_uncaptured, skipped_engines};
use crate::target::Target;

/// The environment variable naming the results file (JSON lines, appended to).
pub const RESULTS_ENV: &str = "WASM_SHIMS_RESULTS";

/// The version of the containerd the suite runs against, as `containerd --version` prints it
/// (`1.6.20~ds1`, `2.1.9+unknown`); `scripts/containerd.sh env` exports it.
pub const CONTAINERD_VERSION_ENV: &str = "WASM_SHIMS_CONTAINERD_VERSION";

/// How one target did in one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    /// The engine's shim is not built; `reason` is the engine's `when_missing`.
    Skipped,
    /// The engine cannot do what the test checks, so it did not run there; `reason` is the
    /// engine's (`Runtime::unsupported`).
    Unsupported,
}

/// One line of the results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The test file (`bad_input`, `signals`, …), from the test binary's name.
    pub area: String,
    /// The test function.
    pub test: String,
    /// The runtime's short name (`wasmtime`, `runc`, …).
    pub runtime: String,
    /// `wasm` or `native`.
    pub workload: String,
    pub outcome: Outcome,
    /// Why it failed or was skipped; empty for a pass.
    pub reason: String,
    /// The containerd it ran on ([`CONTAINERD_VERSION_ENV`]), `unknown` when not named.
    pub containerd: String,
}

/// Records how each target of one test did (`failures[i]` belongs to `targets[i]`), and a
/// skip for every engine whose shim is missing, for each workload the test ran on the Wasm
/// shims. The skip's reason is the engine's `when_missing` (the full one, with the PATH
/// searched, is on stderr), so the table does not depend on the machine.
pub fn record_test(test: &str, targets: &[Target], failures: &[Option<String>]) {
    if std::env::var_os(RESULTS_ENV).is_none() {
        return;
    }
    let area = area();
    // An environment exported by hand may predate the variable: the outcome still counts.
    let containerd = std::env::var(CONTAINERD_VERSION_ENV).unwrap_or_else(|_| "unknown".to_owned());
    let line = |runtime: &str, workload: &str, outcome, reason: &str| Record {
        area: area.clone(),
        test: test.to_owned(),
        runtime: runtime.to_owned(),
        workload: workload.to_owned(),
        outcome,
        reason: reason.to_owned(),
        containerd: containerd.clone(),
    };
    for (target, failure) in targets.iter().zip(failures) {
        let workload = target.workload.name();
        let unsupported = target.runtime.unsupported(test);
        record(&match (failure, unsupported) {
            (_, Some(reason)) => line(target.runtime.name, workload, Outcome::Unsupported, reason),
            (None, None) => line(target.runtime.name, workload, Outcome::Pass, ""),
            (Some(reason), None) => line(target.runtime.name, workload, Outcome::Fail, reason),
        });
    }
    let wasm_shim_workloads: BTreeSet<&str> = targets
        .iter()
        .filter(|target| target.runtime.runs_wasm)
        .map(|target| target.workload.name())
        .collect();
    for engine in skipped_engines() {
        for workload in &wasm_shim_workloads {
            record(&line(
                engine.name,
                workload,
                Outcome::Skipped,
                engine.when_missing,
            ));
        }
    }
}

/// Appends `record` to the results file, if one is asked for. A results file that cannot be
/// written is reported, not fatal: the tests' own outcome stays what decides the run.
fn record(record: &Record) {
    static WRITING: Mutex<()> = Mutex::new(());
    let Some(path) = std::env::var_os(RESULTS_ENV) else {
        return;
    };
    let mut line = serde_json::to_string(record).expect("a record serializes");
    line.push('\n');
    // One write per line, in append mode and under a lock, so the lines of concurrent checks
    // (and of test binaries run one after the other) never interleave.
    let _writing = WRITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        report_uncaptured(&format!(
            "cannot append to {} ({RESULTS_ENV}): {e}",
            path.to_string_lossy()
        ));
    }
}

/// The running test binary's area: `tests/bad_input.rs` builds `bad_input-<hash>`.
fn area() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, _hash)) => name.to_owned(),
            None => stem,
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
