//! The benchmark's private containerd, started and stopped through scripts/containerd.sh, and
//! the precompile cache of the shims it starts.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::config::Paths;

/// containerd namespace of everything the benchmark creates: its own, so that cgroups
/// (`/<namespace>/<id>`) never meet those of a test suite running at the same time.
pub const NAMESPACE: &str = "wasm-bench";

/// A running private containerd; stopped (with every shim and container) when dropped.
#[derive(Debug)]
pub struct Containerd {
    script: PathBuf,
    paths: Paths,
    /// gRPC socket.
    pub address: PathBuf,
}

impl Containerd {
    pub fn start(paths: &Paths) -> Result<Self> {
        let containerd = Self {
            script: paths.repo.join("scripts/containerd.sh"),
            paths: paths.clone(),
            // The socket's place is part of the script's contract.
            address: paths.state_dir.join("containerd.sock"),
        };
        containerd.script_command("start")?;
        if !containerd.address.exists() {
            bail!(
                "containerd started but its socket {} is missing",
                containerd.address.display()
            );
        }
        Ok(containerd)
    }

    fn script_command(&self, verb: &str) -> Result<()> {
        let output = Command::new(&self.script)
            .arg(verb)
            .env("WASM_SHIMS_STATE", &self.paths.state_dir)
            .env("SHIM_BIN_DIR", &self.paths.shim_bin_dir)
            .output()
            .with_context(|| format!("cannot run {} {verb}", self.script.display()))?;
        if !output.status.success() {
            bail!(
                "`{} {verb}` failed ({}): {}",
                self.script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// containerd's pid, from the script's `env` (`WASM_SHIMS_CONTAINERD_PID`).
    pub fn pid(&self) -> Result<u32> {
        let output = Command::new(&self.script)
            .arg("env")
            .env("WASM_SHIMS_STATE", &self.paths.state_dir)
            .output()
            .with_context(|| format!("cannot run {} env", self.script.display()))?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.strip_prefix("export WASM_SHIMS_CONTAINERD_PID="))
            .and_then(|pid| pid.trim().parse().ok())
            .with_context(|| {
                format!(
                    "`{} env` names no containerd pid: {text}",
                    self.script.display()
                )
            })
    }

    /// Removes the precompile cache: the next Wasm container compiles its module.
    pub fn clear_cache(&self) -> Result<()> {
        remove_path(&self.paths.cache_dir())
    }

    /// Puts a file where the cache directory belongs until the guard is dropped: the shims
    /// cannot use the cache then and compile every module (they warn and go on), which gives
    /// an uncached start to every container even when many start at once.
    pub fn block_cache(&self) -> Result<CacheBlock> {
        let path = self.paths.cache_dir();
        remove_path(&path)?;
        fs::write(
            &path,
            "blocked by shim-bench: every container compiles its module\n",
        )
        .with_context(|| format!("cannot block the precompile cache at {}", path.display()))?;
        Ok(CacheBlock { path })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(e) = self.script_command("stop") {
            eprintln!("shim-bench: stopping the private containerd failed: {e:#}");
        }
    }
}

/// See [`Containerd::block_cache`].
#[derive(Debug)]
pub struct CacheBlock {
    path: PathBuf,
}

impl Drop for CacheBlock {
    fn drop(&mut self) {
        if let Err(e) = remove_path(&self.path) {
            eprintln!("shim-bench: {e:#}");
        }
    }
}

fn remove_path(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.with_context(|| format!("cannot remove {}", path.display()))
}
