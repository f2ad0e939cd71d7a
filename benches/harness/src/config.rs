//! What one benchmark run does and where things are, from the environment.
//!
//! Every knob has a default that gives the full run `make bench` is meant to do; the
//! variables exist to shrink it for quick checks (`BENCH_RUNS=3 BENCH_THROUGHPUT=20 make bench`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The sizes of a run, recorded with the results so that a report says what it is based on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sizes {
    /// Timed cold starts per runtime and per path (ctr, API): `BENCH_RUNS`, default 30.
    pub runs: usize,
    /// Containers per throughput measurement: `BENCH_THROUGHPUT`, default 500.
    pub throughput: usize,
    /// Containers per throughput measurement when every one compiles its module:
    /// `BENCH_THROUGHPUT_UNCACHED`, default `BENCH_THROUGHPUT` (the slowest part of the run:
    /// lower it for quick checks).
    pub throughput_uncached: usize,
    /// Parallelism levels of the throughput measurement.
    pub parallelism: Vec<usize>,
    /// Pod sizes (sleeping containers) at which memory is measured: `BENCH_DENSITY`,
    /// default `1,10,50`.
    pub density: Vec<usize>,
    /// Timed runs per module size and cache state: `BENCH_MODULE_RUNS`, default 10.
    pub module_runs: usize,
}

/// Paths of the repository and of what the benchmark uses.
#[derive(Debug, Clone)]
pub struct Paths {
    pub repo: PathBuf,
    /// Where containerd finds the shims, as scripts/containerd.sh computes it.
    pub shim_bin_dir: PathBuf,
    /// Tarballs of scripts/build-test-images.sh.
    pub test_images: PathBuf,
    /// State dir of the benchmark's private containerd (`BENCH_STATE_DIR`, default
    /// `target/bench-containerd`), apart from the one `make test` uses.
    pub state_dir: PathBuf,
    /// Where results, report and plots go (`benches/`).
    pub out_dir: PathBuf,
}

impl Sizes {
    pub fn from_env() -> Result<Self> {
        let runs = count_var("BENCH_RUNS", 30)?;
        let throughput = count_var("BENCH_THROUGHPUT", 500)?;
        let throughput_uncached = count_var("BENCH_THROUGHPUT_UNCACHED", throughput)?;
        let density = list_var("BENCH_DENSITY", &[1, 10, 50])?;
        let module_runs = count_var("BENCH_MODULE_RUNS", 10)?;
        Ok(Self {
            runs,
            throughput,
            throughput_uncached,
            parallelism: vec![1, 4, 16],
            density,
            module_runs,
        })
    }
}

impl Paths {
    pub fn from_env() -> Result<Self> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .context("cannot resolve the repository root from the crate's directory")?;
        let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => absolute(&repo, Path::new(&dir)),
            None => repo.join("target"),
        };
        let shim_bin_dir = match std::env::var_os("SHIM_BIN_DIR") {
            Some(dir) => absolute(&repo, Path::new(&dir)),
            None => target_dir.join("release"),
        };
        let state_dir = match std::env::var_os("BENCH_STATE_DIR") {
            Some(dir) => absolute(&repo, Path::new(&dir)),
            None => repo.join("target/bench-containerd"),
        };
        Ok(Self {
            test_images: shim_conformance::images::test_images_dir(),
            out_dir: repo.join("benches"),
            repo,
            shim_bin_dir,
            state_dir,
        })
    }

    /// The precompile cache of the shims started by the private containerd (scripts/containerd.sh
    /// sets `WASM_SHIM_CACHE_DIR` to this).
    pub fn cache_dir(&self) -> PathBuf {
        self.state_dir.join("wasm-cache")
    }
}

fn absolute(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| base.to_path_buf())
            .join(path)
    }
}

fn count_var(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => parse_count(name, &text),
        _ => Ok(default),
    }
}

fn parse_count(name: &str, text: &str) -> Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(0) | Err(_) => bail!("{name}={text:?} is not a positive whole number"),
        Ok(n) => Ok(n),
    }
}

fn list_var(name: &str, default: &[usize]) -> Result<Vec<usize>> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => parse_list(name, &text),
        _ => Ok(default.to_vec()),
    }
}

/// A comma-separated list of increasing positive counts.
fn parse_list(name: &str, text: &str) -> Result<Vec<usize>> {
    let list = text
        .split(',')
        .map(|item| parse_count(name, item))
        .collect::<Result<Vec<_>>>()?;
    if !list.windows(2).all(|pair| pair[0] < pair[1]) {
        bail!("{name}={text:?} must list increasing counts, e.g. 1,10,50");
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_be_positive_numbers() {
        assert_eq!(parse_count("X", " 12 ").unwrap(), 12);
        assert!(parse_count("X", "0").is_err());
        assert!(parse_count("X", "ten").is_err());
    }

    #[test]
    fn lists_must_increase() {
        assert_eq!(parse_list("X", "1,10,50").unwrap(), vec![1, 10, 50]);
        assert!(parse_list("X", "10,1").is_err());
        assert!(parse_list("X", "1,,2").is_err());
    }
}
