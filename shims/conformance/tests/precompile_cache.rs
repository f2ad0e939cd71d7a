//! The node's precompile cache, seen from outside: a module is compiled once, later
//! containers (each with a new shim process) load the stored artifact, and a corrupted or
//! truncated entry is detected and rebuilt instead of trusted (the artifact is
//! `<digest>.cwasm`, its length and CRC-32 `<digest>.sum`). Only engines with a
//! precompiled form keep entries; the others compile at every create by design.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use image_builder::{ImageBuilder, wasi_print_module};
use sha2::{Digest, Sha256};
use shim_conformance::container::{Container, Status};
use shim_conformance::environment::containerd;
use shim_conformance::images::TestImage;
use shim_conformance::leftovers::process_in_container;
use shim_conformance::target::{Target, check_targets, wasm_targets};

/// Engines whose `Engine::precompile_key` is set.
const PRECOMPILING_ENGINES: &[&str] = &["wasmtime"];

static CACHED_MODULE: TestImage = TestImage::built(
    "docker.io/library/shim-conformance-cached-module:latest",
    "wasip1/wasm",
    cached_module_image,
);
const PROGRAM: &str = "/cached.wasm";
const GREETING: &str = "cached module ran\n";

/// A module no other test uses, so its cache entry is this test's alone.
fn cached_module() -> Result<Vec<u8>> {
    wasi_print_module(GREETING)
}

fn cached_module_image() -> Result<ImageBuilder> {
    Ok(ImageBuilder::new(CACHED_MODULE.reference)
        .platform("wasip1", "wasm")
        .file(PROGRAM, cached_module()?, 0o755))
}

/// `<cache root>/<engine>/<key>/<sha256 of the module>.cwasm`, the root being the
/// `WASM_SHIM_CACHE_DIR` that containerd (and so every shim) runs with.
fn entry_of(engine: &str) -> Result<PathBuf> {
    let digest: String = Sha256::digest(cached_module()?)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let engine_dir = containerd().path(cache_root()?).join(engine);
    let keys = std::fs::read_dir(&engine_dir)
        .with_context(|| format!("no cache for {engine} at {}", engine_dir.display()))?;
    keys.filter_map(|key| Some(key.ok()?.path().join(format!("{digest}.cwasm"))))
        .find(|entry| entry.exists())
        .with_context(|| format!("no entry for the module under {}", engine_dir.display()))
}

/// The cache root as the shims see it (inside containerd's mount namespace).
fn cache_root() -> Result<PathBuf> {
    let environ = std::fs::read(format!("/proc/{}/environ", containerd().pid()))
        .context("read containerd's environment")?;
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(b"WASM_SHIM_CACHE_DIR="))
        .map(|root| PathBuf::from(String::from_utf8_lossy(root).into_owned()))
        .context("containerd runs without WASM_SHIM_CACHE_DIR (scripts/containerd.sh sets it)")
}

fn run(target: &Target, test: &str) -> Result<()> {
    Container::new(test, target.runtime, &CACHED_MODULE)
        .run(&[PROGRAM])?
        .expect(0, GREETING)
}

/// The Wasm targets whose engine precompiles (has a cache entry to look at).
fn precompiling_targets() -> Vec<Target> {
    wasm_targets()
        .into_iter()
        .filter(|t| PRECOMPILING_ENGINES.contains(&t.runtime.name))
        .collect()
}

/// Identity of the file at `path`: a rebuilt entry is a new file renamed into place, with an
/// inode and a birth time of its own. Not the mtime: loading an entry touches it, for the
/// cache's least-recently-used eviction.
fn identity(path: &Path) -> Result<(u64, Option<SystemTime>)> {
    let meta = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok((meta.ino(), meta.created().ok()))
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_cache_survives_shim_restarts_and_recovers_from_bad_entries() {
    check_targets(&precompiling_targets(), |target, test| {
        run(target, test)?;
        let entry = entry_of(target.runtime.name)?;
        let built = identity(&entry)?;

        // A new container, so a new shim process: it must load the entry, not rebuild it.
        run(target, test)?;
        if identity(&entry)? != built {
            bail!(
                "{}: a second container rebuilt the entry instead of loading it",
                entry.display()
            );
        }

        for (damage, bytes) in [
            ("corrupted", {
                let mut stored = std::fs::read(&entry)?;
                let middle = stored.len() / 2;
                stored[middle] ^= 0xff;
                stored
            }),
            ("truncated", std::fs::read(&entry)?[..40].to_vec()),
        ] {
            std::fs::write(&entry, &bytes)?;
            let damaged = identity(&entry)?;
            run(target, test).with_context(|| format!("after the entry was {damage}"))?;
            if identity(&entry)? == damaged {
                bail!("{}: the {damage} entry was not rebuilt", entry.display());
            }
            let artifact = std::fs::read(&entry)?;
            let sum_path = entry.with_extension("sum");
            let sum = std::fs::read_to_string(&sum_path)
                .with_context(|| format!("read {}", sum_path.display()))?;
            let expected = format!("{} {:08x}", artifact.len(), crc32fast::hash(&artifact));
            if sum.trim_end() != expected {
                bail!(
                    "{}: the rebuilt entry's checksum {sum:?} does not match its artifact ({expected})",
                    entry.display()
                );
            }
        }
        Ok(())
    });
}

/// A running module's code comes from its cache entry, mapped: every container running the
/// module shares those pages through the page cache instead of holding a copy. Two sleeping
/// containers map the same entry file, executable.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn running_containers_map_the_cached_module() {
    check_targets(&precompiling_targets(), |target, test| {
        let root = cache_root()?;
        let mut mapped = Vec::new();
        let mut containers = Vec::new();
        for n in 0..2 {
            let container = target.container(&format!("{test}-{n}"));
            container.run_detached(&target.args(&["sleep", "600"]))?;
            container.wait_for_status(Status::Running, Duration::from_secs(10))?;
            let pid = process_in_container(container.id())?;
            let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
                .with_context(|| format!("read the maps of {pid}"))?;
            let code: Vec<&str> = maps
                .lines()
                .filter(|line| line.split_whitespace().nth(1) == Some("r-xp"))
                .filter_map(|line| line.split_whitespace().nth(5))
                .filter(|path| {
                    path.starts_with(root.to_str().unwrap_or("/")) && path.ends_with(".cwasm")
                })
                .collect();
            match code[..] {
                [entry] => mapped.push(entry.to_owned()),
                _ => bail!(
                    "process {pid} of {} maps {code:?} executable from the cache {}, expected its module's entry",
                    container.id(),
                    root.display()
                ),
            }
            containers.push(container);
        }
        if mapped[0] != mapped[1] {
            bail!("two containers of one module map different entries: {mapped:?}");
        }
        for container in &containers {
            container.kill("SIGKILL")?;
        }
        Ok(())
    });
}
