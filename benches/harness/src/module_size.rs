//! Module size sensitivity: the cold start of generated modules of about 100 KB and 5 MB,
//! made of many arithmetic functions so that compile time grows with the size; through
//! the API, uncached and cached (and WAMR, which interprets and has no cache).

use std::fmt::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::bench::Bench;
use crate::cold_start::run_api;
use crate::images;
use crate::stats::Summary;
use crate::variants::{Image, Variant};

/// The sizes measured: (name, bytes).
pub const SIZES: [(&str, usize); 2] = [("100 KB", 100_000), ("5 MB", 5_000_000)];

/// Arithmetic steps per function: 15 bytes each, so a function is about 0.6 KB.
const STEPS_PER_FUNCTION: usize = 40;

/// A generated module, imported as an image.
#[derive(Debug, Clone)]
pub struct SizedModule {
    pub name: String,
    pub bytes: usize,
    pub functions: usize,
    pub image: Image,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleSize {
    /// `100 KB` or `5 MB`.
    pub size: String,
    pub bytes: usize,
    pub functions: usize,
    pub variant: String,
    pub label: String,
    pub summary: Summary,
}

/// Generates the module of one size and imports it as an image.
pub fn prepare(bench: &Bench, name: &str, target: usize) -> Result<SizedModule> {
    let (module, functions) =
        module_of_size(target).with_context(|| format!("cannot generate a {name} module"))?;
    let bytes = module.len();
    let tag = name.replace(' ', "").to_lowercase();
    let image = Image {
        reference: format!("docker.io/library/bench-module-{tag}:latest"),
        platform: "wasip1/wasm".into(),
        program: format!("/module-{tag}.wasm"),
    };
    images::import_module(
        &bench.containerd,
        &bench.paths.state_dir.join("bench-images"),
        &image,
        module,
    )?;
    Ok(SizedModule {
        name: name.to_owned(),
        bytes,
        functions,
        image,
    })
}

/// Times `variant` (built on `module.image`) starting the module.
pub fn measure(bench: &Bench, module: &SizedModule, variant: &Variant) -> Result<ModuleSize> {
    Ok(ModuleSize {
        size: module.name.clone(),
        bytes: module.bytes,
        functions: module.functions,
        variant: variant.key.to_owned(),
        label: variant.label.to_owned(),
        summary: time_runs(bench, variant)?,
    })
}

fn time_runs(bench: &Bench, variant: &Variant) -> Result<Summary> {
    run_api(bench, variant, &[]).context("warm-up run")?;
    let samples = (0..bench.sizes.module_runs)
        .map(|_| {
            bench.before_each(variant)?;
            run_api(bench, variant, &[])
        })
        .collect::<Result<Vec<Duration>>>()?;
    Summary::of(&samples).context("no samples")
}

/// A WASI command of about `target` bytes: a memory, an empty `_start`, and as many
/// generated functions as it takes. Returns the module and its function count.
pub fn module_of_size(target: usize) -> Result<(Vec<u8>, usize)> {
    // Size a small sample, then scale: every function encodes to nearly the same length.
    let sample_functions = 50;
    let sample = image_builder::wat_module(&module_text(sample_functions))?;
    let empty = image_builder::wat_module(&module_text(0))?;
    let per_function = (sample.len() - empty.len()) as f64 / sample_functions as f64;
    let functions = ((target.saturating_sub(empty.len())) as f64 / per_function).round() as usize;
    let module = image_builder::wat_module(&module_text(functions))?;
    Ok((module, functions))
}

fn module_text(functions: usize) -> String {
    let mut text = String::from("(module\n  (memory (export \"memory\") 1)\n");
    text.push_str("  (func (export \"_start\"))\n");
    for i in 0..functions {
        // Distinct constants keep functions from being identical; a chain of multiplies
        // and xors on a local gives the compiler real work per instruction.
        let _ = writeln!(
            text,
            "  (func (param i32) (result i32) (local i32)\n    local.get 0 i32.const {} i32.add local.set 1",
            constant(i)
        );
        for step in 0..STEPS_PER_FUNCTION {
            let _ = writeln!(
                text,
                "    local.get 1 i32.const {} i32.mul i32.const {} i32.xor local.set 1",
                constant(2 * step + 3),
                constant(i * STEPS_PER_FUNCTION + step)
            );
        }
        text.push_str("    local.get 1)\n");
    }
    text.push(')');
    text
}

/// A constant derived from `n` whose encoding is always 3 bytes (signed LEB128 holds
/// 2^13..2^20 in 3), so every function has the same size and the sample-based sizing is exact.
fn constant(n: usize) -> usize {
    const LOW: usize = 1 << 13;
    const HIGH: usize = 1 << 20;
    LOW + n % (HIGH - LOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_modules_are_close_to_the_size_asked() {
        for target in [100_000, 1_000_000] {
            let (module, functions) = module_of_size(target).unwrap();
            let off = (module.len() as f64 - target as f64).abs() / target as f64;
            assert!(off < 0.01, "{} bytes for {target}", module.len());
            assert!(functions > 100, "only {functions} functions for {target}");
        }
    }

    #[test]
    fn size_comes_from_the_function_count() {
        let small = image_builder::wat_module(&module_text(10)).unwrap();
        let large = image_builder::wat_module(&module_text(100)).unwrap();
        assert!(large.len() > 8 * small.len());
    }
}
