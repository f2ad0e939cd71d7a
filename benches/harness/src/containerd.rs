//! The benchmark's private containerd, started and stopped through scripts/containerd.sh, and
//! the precompile cache of the shims it starts.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shim_conformance::ctr::Ctr;
use shim_conformance::environment::{Endpoint, containerd_script, pid_from_script};

use crate::config::Paths;

/// containerd namespace of everything the benchmark creates: its own, so that cgroups
/// (`/<namespace>/<id>`) never meet those of a test suite running at the same time.
pub const NAMESPACE: &str = "wasm-bench";

/// Deadline of a `ctr` call: long enough for an image import or an uncached start of the
/// largest module on a busy machine; only a hang reaches it.
const CTR_DEADLINE: Duration = Duration::from_secs(180);

/// A running private containerd; stopped (with every shim and container) when dropped.
#[derive(Debug)]
pub struct Containerd {
    paths: Paths,
    /// Its socket and [`NAMESPACE`].
    pub endpoint: Endpoint,
    /// Added to the script's environment, so containerd's and its shims'.
    env: Vec<(String, PathBuf)>,
}

impl Containerd {
    pub fn start(paths: &Paths) -> Result<Self> {
        Self::start_with(paths, Vec::new())
    }

    /// Started with `env` in its environment (and its shims'), on `paths.state_dir`.
    pub fn start_with(paths: &Paths, env: Vec<(String, PathBuf)>) -> Result<Self> {
        let containerd = Self {
            paths: paths.clone(),
            endpoint: Endpoint {
                // The socket's place is part of the script's contract.
                address: paths.state_dir.join("containerd.sock"),
                namespace: NAMESPACE.to_owned(),
            },
            env,
        };
        containerd.script("start")?;
        if !containerd.endpoint.address.exists() {
            bail!(
                "containerd started but its socket {} is missing",
                containerd.endpoint.address.display()
            );
        }
        Ok(containerd)
    }

    /// `scripts/containerd.sh VERB` for this containerd (its state dir and shims).
    fn script(&self, verb: &str) -> Result<()> {
        containerd_script(verb, &self.script_env())?;
        Ok(())
    }

    fn script_env(&self) -> Vec<(&str, &Path)> {
        [
            ("WASM_SHIMS_STATE", self.paths.state_dir.as_path()),
            ("SHIM_BIN_DIR", self.paths.shim_bin_dir.as_path()),
        ]
        .into_iter()
        .chain(
            self.env
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_path())),
        )
        .collect()
    }

    /// containerd's pid, from the script's `env` (`WASM_SHIMS_CONTAINERD_PID`).
    pub fn pid(&self) -> Result<u32> {
        pid_from_script(&self.script_env())
    }

    /// `ctr ARGS` against this containerd, in [`NAMESPACE`].
    pub fn ctr<S: AsRef<str>>(&self, args: impl IntoIterator<Item = S>) -> Ctr {
        Ctr::new(args).at(&self.endpoint).timeout(CTR_DEADLINE)
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
        if let Err(e) = self.script("stop") {
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
