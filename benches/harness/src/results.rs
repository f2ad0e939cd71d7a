//! Everything one run measured, as written to `benches/results/latest.json`; the report is
//! made from this alone, so `shim-bench report` can redo it from a saved file.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cold_start::ColdStart;
use crate::config::Sizes;
use crate::debugging::Debugging;
use crate::density::Density;
use crate::machine::Machine;
use crate::module_size::ModuleSize;
use crate::throughput::Throughput;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// UTC, RFC 3339.
    pub started_at: String,
    pub duration_s: f64,
    pub machine: Machine,
    /// `BENCH_NOTE`: what the person running it wants said about the run.
    pub note: Option<String>,
    pub sizes: Sizes,
    /// Whether the WAMR shim was built (and so measured).
    pub wamr: bool,
    pub cold_start: Vec<ColdStart>,
    pub throughput: Vec<Throughput>,
    pub density: Vec<Density>,
    pub module_size: Vec<ModuleSize>,
    /// What tracing and profiling cost (`shim-bench debugging` measures it alone).
    #[serde(default)]
    pub debugging: Option<Debugging>,
    /// Measurements that could not be made, and why.
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub measurement: String,
    pub variant: String,
    pub error: String,
}

impl Results {
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a shim-bench results file", path.display()))
    }

    pub fn cold_start(&self, variant: &str) -> Option<&ColdStart> {
        self.cold_start.iter().find(|c| c.variant == variant)
    }

    pub fn throughput(&self, variant: &str) -> Option<&Throughput> {
        self.throughput.iter().find(|t| t.variant == variant)
    }

    pub fn density(&self, variant: &str) -> Option<&Density> {
        self.density.iter().find(|d| d.variant == variant)
    }
}
