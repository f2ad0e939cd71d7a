//! The precompile cache: a module is compiled once per (content digest, engine compatibility
//! key) on the node, and every later container loads the artifact instead of compiling.
//!
//! Layout: `<root>/<engine>/<key>/<sha256 of the module>.cwasm` holds the artifact exactly as
//! the engine wrote it, so that an engine can map the file instead of copying it (wasmtime
//! does: the code pages are then shared through the page cache by every container running
//! the module), and `<digest>.sum` its length and CRC-32. An entry is only used when both
//! match and the engine accepts it; anything else (truncated, corrupted, no checksum, from
//! another engine build) is removed and compiled again. The checksum catches damage, not
//! tampering: the cache belongs to root, like the shim binary.
//!
//! Files are written to a temporary name and renamed, never changed in place (a container may
//! have the old one mapped), under an exclusive `flock` on `<digest>.lock`, so containers of a
//! new image that start together compile it once and never see a half-written entry.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{debug, info, warn};
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

/// What `<digest>.sum` says: `<length> <crc32 as 8 hex digits>`.
fn checksum(artifact: &[u8]) -> String {
    format!("{} {:08x}", artifact.len(), crc32fast::hash(artifact))
}

use crate::engine::Engine;

/// The environment variable that moves the cache (default [`DEFAULT_ROOT`]); `off` disables it.
pub const ROOT_ENV: &str = "WASM_SHIM_CACHE_DIR";
/// Where the cache lives unless [`ROOT_ENV`] says otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/containerd-shim-wasm/cache";

/// The cache directory for engine `E` with compatibility `key`: the runtime option `CacheDir`,
/// else the environment's [`ROOT_ENV`], else [`DEFAULT_ROOT`].
pub fn dir_for<E: Engine>(key: &str) -> Option<PathBuf> {
    let root = crate::config::for_process()
        .cache_dir
        .clone()
        .or_else(|| std::env::var(ROOT_ENV).ok())
        .unwrap_or_else(|| DEFAULT_ROOT.to_string());
    (root != "off").then(|| Path::new(&root).join(E::NAME).join(key))
}

/// Compiles `bytes` for `container` through the node's cache (or directly when the engine has
/// no precompiled form or the cache cannot be used).
pub fn compile<E: Engine>(
    engine: &E,
    bytes: &[u8],
    entry: &str,
    container: &str,
) -> anyhow::Result<E::Module> {
    let Some(dir) = engine.precompile_key().and_then(|key| dir_for::<E>(&key)) else {
        return engine.compile(bytes, entry);
    };
    match Entry::open(&dir, bytes, container) {
        Ok(entry_file) => entry_file.load_or_build(engine, bytes, entry),
        Err(e) => {
            warn!(
                id = container;
                "container {container}: precompile cache {} unusable, compiling without it: {e:#}",
                dir.display()
            );
            engine.compile(bytes, entry)
        }
    }
}

/// One module's entry, locked for as long as this value lives.
struct Entry {
    /// `<digest>.cwasm`, the artifact.
    path: PathBuf,
    /// `<digest>.sum`, its checksum.
    sum_path: PathBuf,
    /// How long hashing the module and taking the lock took, for the debug log.
    opened_in: Duration,
    /// The container being created, for the log.
    container: String,
    _lock: Flock<File>,
}

impl Entry {
    fn open(dir: &Path, module: &[u8], container: &str) -> anyhow::Result<Self> {
        let began = Instant::now();
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let digest = hex(&Sha256::digest(module));
        let lock_path = dir.join(format!("{digest}.lock"));
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("open {}", lock_path.display()))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| anyhow::anyhow!("lock {}: {errno}", lock_path.display()))?;
        Ok(Self {
            path: dir.join(format!("{digest}.cwasm")),
            sum_path: dir.join(format!("{digest}.sum")),
            opened_in: began.elapsed(),
            container: container.to_string(),
            _lock: lock,
        })
    }

    fn load_or_build<E: Engine>(
        &self,
        engine: &E,
        bytes: &[u8],
        entry: &str,
    ) -> anyhow::Result<E::Module> {
        if let Some(module) = self.load(engine, entry) {
            return Ok(module);
        }
        // At info level: a large module (a ~20 MB CPython component) takes seconds, which a
        // user waiting for the container's first start should be able to see.
        info!(
            id = self.container.as_str();
            "container {}: compiling the module ({} bytes) with {}, not in the precompile cache yet",
            self.container,
            bytes.len(),
            E::NAME
        );
        let began = Instant::now();
        let artifact = engine.precompile(bytes)?;
        info!(
            id = self.container.as_str();
            "container {}: compiled in {:.1?}",
            self.container,
            began.elapsed()
        );
        let module = engine.load_precompiled(&artifact, entry)?;
        if let Err(e) = self.store(&artifact) {
            warn!(
                id = self.container.as_str();
                "container {}: store {} in the precompile cache: {e:#}",
                self.container,
                self.path.display()
            );
        }
        Ok(module)
    }

    /// The cached module, or None (after removing a bad entry) when it must be rebuilt.
    fn load<E: Engine>(&self, engine: &E, entry: &str) -> Option<E::Module> {
        let began = Instant::now();
        let stored = match fs::read(&self.path) {
            Ok(stored) => stored,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => return self.discard(&format!("unreadable: {e}")),
        };
        let expected = match fs::read_to_string(&self.sum_path) {
            Ok(expected) => expected,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.discard("has no checksum file");
            }
            Err(e) => return self.discard(&format!("checksum unreadable: {e}")),
        };
        if checksum(&stored) != expected.trim_end() {
            return self.discard("checksum mismatch (damaged or truncated)");
        }
        drop(stored);
        // The entry's time says when it was last used, for the size cap's eviction.
        let _ = File::options()
            .write(true)
            .open(&self.path)
            .and_then(|file| file.set_modified(std::time::SystemTime::now()));
        let checked = Instant::now();
        match engine.load_precompiled_file(&self.path, entry) {
            Ok(module) => {
                debug!(
                    id = self.container.as_str();
                    "precompile cache hit: {} (module hash and lock {:?}, entry check {:?}, engine load {:?})",
                    self.path.display(),
                    self.opened_in,
                    checked - began,
                    checked.elapsed()
                );
                Some(module)
            }
            // The entry is intact, so the module itself is at fault (e.g. a missing export):
            // compiling again gives the user the same error with the engine's own words.
            Err(e) => self.discard(&format!("rejected by the engine: {e:#}")),
        }
    }

    fn discard<T>(&self, why: &str) -> Option<T> {
        warn!(
            id = self.container.as_str();
            "container {}: precompile cache entry {} {why}: compiling again",
            self.container,
            self.path.display()
        );
        let _ = fs::remove_file(&self.sum_path);
        let _ = fs::remove_file(&self.path);
        None
    }

    /// The artifact first, then its checksum: an entry interrupted in between has no
    /// checksum file, which is rebuilt.
    fn store(&self, artifact: &[u8]) -> anyhow::Result<()> {
        let _ = fs::remove_file(&self.sum_path);
        write_and_rename(&self.path, artifact)?;
        write_and_rename(&self.sum_path, checksum(artifact).as_bytes())?;
        if let Some(cap) = crate::config::for_process().cache_max_size()?
            && let Some(engine_dir) = self.path.parent().and_then(Path::parent)
        {
            let removed = evict_beyond(engine_dir, cap, &self.path);
            if removed > 0 {
                info!(
                    id = self.container.as_str();
                    "container {}: removed {removed} least recently used entries of the precompile cache {} (CacheMaxSize {cap} bytes)",
                    self.container,
                    engine_dir.display()
                );
            }
        }
        Ok(())
    }
}

/// Removes the least recently used artifacts (`*.cwasm` under `engine_dir`'s key
/// directories, oldest modification time first, with their checksums) until they take at
/// most `cap` bytes, keeping `newest`; how many it removed. A container that has one mapped
/// keeps it until it exits.
fn evict_beyond(engine_dir: &Path, cap: u64, newest: &Path) -> usize {
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = fs::read_dir(engine_dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|key| fs::read_dir(key.path()).into_iter().flatten().flatten())
        .filter(|file| file.path().extension().is_some_and(|ext| ext == "cwasm"))
        .filter_map(|file| {
            let meta = file.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), file.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|(_, size, _)| size).sum();
    entries.sort();
    let mut removed = 0;
    for (_, size, path) in entries {
        if total <= cap {
            break;
        }
        if path == newest {
            continue;
        }
        let _ = fs::remove_file(path.with_extension("sum"));
        if fs::remove_file(&path).is_ok() {
            total -= size;
            removed += 1;
        }
    }
    removed
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it to `path`.
fn write_and_rename(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut file = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rename {} into place", tmp.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::WasiContext;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Artifacts are the module bytes reversed; counts how often it really compiles.
    #[derive(Clone, Default)]
    struct Counting {
        compiles: Arc<AtomicUsize>,
    }

    impl Engine for Counting {
        const NAME: &'static str = "counting";
        type Module = Vec<u8>;
        fn new(_: &crate::config::EngineConfig) -> anyhow::Result<Self> {
            Ok(Self::default())
        }
        fn compile(&self, bytes: &[u8], _entry: &str) -> anyhow::Result<Vec<u8>> {
            Ok(bytes.to_vec())
        }
        fn precompile_key(&self) -> Option<String> {
            Some("v1".into())
        }
        fn precompile(&self, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
            self.compiles.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(bytes.iter().rev().copied().collect())
        }
        fn load_precompiled(&self, artifact: &[u8], entry: &str) -> anyhow::Result<Vec<u8>> {
            anyhow::ensure!(entry == "_start", "no export {entry}");
            Ok(artifact.iter().rev().copied().collect())
        }
        fn run(&self, _module: &Vec<u8>, _ctx: &WasiContext) -> anyhow::Result<i32> {
            Ok(0)
        }
    }

    fn compile_in(root: &Path, engine: &Counting, bytes: &[u8]) -> Vec<u8> {
        let dir = root.join("counting").join("v1");
        Entry::open(&dir, bytes, "test")
            .unwrap()
            .load_or_build(engine, bytes, "_start")
            .unwrap()
    }

    fn entry_path(root: &Path, bytes: &[u8]) -> PathBuf {
        root.join("counting/v1")
            .join(format!("{}.cwasm", hex(&Sha256::digest(bytes))))
    }

    #[test]
    fn compiles_once_then_loads() {
        let root = tempfile::tempdir().unwrap();
        let engine = Counting::default();
        assert_eq!(compile_in(root.path(), &engine, b"module"), b"module");
        assert_eq!(compile_in(root.path(), &engine, b"module"), b"module");
        assert_eq!(engine.compiles.load(Ordering::SeqCst), 1);
        assert_eq!(compile_in(root.path(), &engine, b"other"), b"other");
        assert_eq!(engine.compiles.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn corrupt_and_truncated_entries_are_rebuilt() {
        let root = tempfile::tempdir().unwrap();
        let engine = Counting::default();
        compile_in(root.path(), &engine, b"module");
        let path = entry_path(root.path(), b"module");

        let mut stored = fs::read(&path).unwrap();
        let last = stored.len() - 1;
        stored[last] ^= 0xff;
        fs::write(&path, &stored).unwrap();
        assert_eq!(compile_in(root.path(), &engine, b"module"), b"module");
        assert_eq!(
            engine.compiles.load(Ordering::SeqCst),
            2,
            "corruption detected"
        );

        fs::remove_file(path.with_extension("sum")).unwrap();
        assert_eq!(compile_in(root.path(), &engine, b"module"), b"module");
        assert_eq!(
            engine.compiles.load(Ordering::SeqCst),
            3,
            "an entry without its checksum is rebuilt"
        );
        assert!(path.with_extension("sum").exists());

        fs::write(&path, b"short").unwrap();
        assert_eq!(compile_in(root.path(), &engine, b"module"), b"module");
        assert_eq!(
            engine.compiles.load(Ordering::SeqCst),
            4,
            "truncation detected"
        );
        assert_eq!(compile_in(root.path(), &engine, b"module"), b"module");
        assert_eq!(
            engine.compiles.load(Ordering::SeqCst),
            4,
            "the rebuilt entry is used"
        );
    }

    #[test]
    fn twenty_at_once_compile_once() {
        let root = tempfile::tempdir().unwrap();
        let engine = Counting::default();
        std::thread::scope(|scope| {
            for _ in 0..20 {
                scope.spawn(|| assert_eq!(compile_in(root.path(), &engine, b"module"), b"module"));
            }
        });
        assert_eq!(engine.compiles.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn errors_reach_the_caller_and_leave_no_entry() {
        let root = tempfile::tempdir().unwrap();
        let engine = Counting::default();
        let dir = root.path().join("counting/v1");
        let err = Entry::open(&dir, b"module", "test")
            .unwrap()
            .load_or_build(&engine, b"module", "greet")
            .unwrap_err();
        assert_eq!(err.to_string(), "no export greet");
        assert!(!entry_path(root.path(), b"module").exists());
        assert!(
            !entry_path(root.path(), b"module")
                .with_extension("sum")
                .exists()
        );
    }

    #[test]
    fn the_size_cap_removes_the_least_recently_used_entries() {
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("key");
        fs::create_dir(&key).unwrap();
        let now = std::time::SystemTime::now();
        for (name, age) in [("old", 30), ("mid", 20), ("new", 10)] {
            let path = key.join(format!("{name}.cwasm"));
            fs::write(&path, [0u8; 100]).unwrap();
            fs::write(path.with_extension("sum"), "100 0").unwrap();
            File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(now - std::time::Duration::from_secs(age))
                .unwrap();
        }
        // The newest entry written counts but is kept whatever its age.
        assert_eq!(evict_beyond(root.path(), 200, &key.join("new.cwasm")), 1);
        assert!(!key.join("old.cwasm").exists() && !key.join("old.sum").exists());
        assert!(key.join("mid.cwasm").exists());
        assert_eq!(evict_beyond(root.path(), 50, &key.join("mid.cwasm")), 1);
        assert!(key.join("mid.cwasm").exists() && !key.join("new.cwasm").exists());
    }
}
