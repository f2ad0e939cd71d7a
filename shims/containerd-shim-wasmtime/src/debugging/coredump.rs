//! Wasm core dumps of a trapped module, in the tool-conventions format `wasmtime run -D
//! coredump=…` writes (wasmgdb and wasm-tools read it), into a directory the container names
//! with [`DIR_ANNOTATION`] (a volume, so that the dump outlives the container).
//!
//! Every engine of the shim captures a dump on a trap (`coredump_on_trap`): the capture only
//! takes handles on the store's instances, memories and globals, and nothing is serialised
//! unless the container asked for dumps. The dump is the outermost layer of the trap's error;
//! [`describe`] reads the error without it (its text lists every module, instance and memory).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use containerd_shim_wasm::WasiContext;
use wasmtime::{AsContextMut, WasmCoreDump};

/// The container annotation naming the directory (inside the container) dumps go to.
pub const DIR_ANNOTATION: &str = "io.containerd.wasm.coredump-dir";
/// The container annotation bounding the bytes all the container's dumps may take together.
pub const MAX_SIZE_ANNOTATION: &str = "io.containerd.wasm.coredump-max-size";
/// The bound without [`MAX_SIZE_ANNOTATION`]: a dump holds the module's whole memory.
pub const DEFAULT_MAX_SIZE: u64 = 256 << 20;

/// Where a container's dumps go and how many bytes they may still take.
#[derive(Debug, PartialEq, Eq)]
pub struct CoreDumps {
    dir: PathBuf,
    max_size: u64,
}

/// Bytes written by this process (one container) so far, against [`CoreDumps::max_size`].
static WRITTEN: AtomicU64 = AtomicU64::new(0);

impl CoreDumps {
    /// The container's dump settings; `None` when it asked for none.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> anyhow::Result<Option<Self>> {
        let max_size = match annotations.get(MAX_SIZE_ANNOTATION) {
            None => DEFAULT_MAX_SIZE,
            // `off`: no bound but the volume's.
            Some(text) => containerd_shim_wasm::config::parse_size(text)
                .with_context(|| format!("the annotation {MAX_SIZE_ANNOTATION}={text:?}"))?
                .unwrap_or(u64::MAX),
        };
        let Some(dir) = annotations.get(DIR_ANNOTATION) else {
            return Ok(None);
        };
        if !dir.starts_with('/') {
            bail!("the annotation {DIR_ANNOTATION}={dir:?}: an absolute path in the container");
        }
        Ok(Some(Self {
            dir: PathBuf::from(dir),
            max_size,
        }))
    }

    /// Writes `dump` of `module` as a new file of the directory; its path, or why not.
    fn write(
        &self,
        dump: &WasmCoreDump,
        mut store: impl AsContextMut,
        module: &str,
        container: &str,
    ) -> anyhow::Result<PathBuf> {
        // The dump is mostly the memories: refuse before serialising one that cannot fit.
        let memories: u64 = dump
            .memories()
            .iter()
            .map(|memory| memory.data_size(&store) as u64)
            .sum();
        let written = WRITTEN.load(Ordering::Relaxed);
        let left = self.max_size.saturating_sub(written);
        if memories > left {
            bail!(
                "its memories alone take {memories} bytes, more than the {left} left of \
                 {MAX_SIZE_ANNOTATION} ({} bytes)",
                self.max_size
            );
        }
        let bytes = dump.serialize(store.as_context_mut(), module);
        if bytes.len() as u64 > left {
            bail!(
                "it takes {} bytes, more than the {left} left of {MAX_SIZE_ANNOTATION} ({} bytes)",
                bytes.len(),
                self.max_size
            );
        }
        let path = self.dir.join(super::file_name(container, "coredump"));
        write_new(&path, &bytes).with_context(|| format!("write {}", path.display()))?;
        WRITTEN.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(path)
    }
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// After `error` ended a run of `ctx`'s module in `store`: writes the core dump it carries when
/// the container asked for dumps, saying where (or why not) on the container's stderr and in
/// the shim log.
pub fn write_if_asked(error: &anyhow::Error, store: impl AsContextMut, ctx: &WasiContext) {
    let Some(dump) = error.downcast_ref::<WasmCoreDump>() else {
        return;
    };
    let written = match CoreDumps::from_annotations(&ctx.annotations) {
        Ok(None) => return,
        Ok(Some(dumps)) => dumps.write(dump, store, &ctx.args[0], &ctx.container),
        Err(e) => Err(e),
    };
    super::report(ctx, "core dump", &written);
}

/// `error` as `{:#}` shows it, without the core dump's own text (the trap and its backtrace
/// stay).
pub fn describe(error: &anyhow::Error) -> String {
    let Some(dump) = error.downcast_ref::<WasmCoreDump>() else {
        return format!("{error:#}");
    };
    let dump = dump.to_string();
    error
        .chain()
        .map(|cause| cause.to_string())
        .filter(|cause| *cause != dump)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dumps_are_off_unless_a_directory_is_named() {
        assert_eq!(
            CoreDumps::from_annotations(&annotations(&[])).unwrap(),
            None
        );
        assert_eq!(
            CoreDumps::from_annotations(&annotations(&[(DIR_ANNOTATION, "/dumps")])).unwrap(),
            Some(CoreDumps {
                dir: "/dumps".into(),
                max_size: DEFAULT_MAX_SIZE
            })
        );
        assert_eq!(
            CoreDumps::from_annotations(&annotations(&[
                (DIR_ANNOTATION, "/dumps"),
                (MAX_SIZE_ANNOTATION, "1M")
            ]))
            .unwrap()
            .unwrap()
            .max_size,
            1 << 20
        );
        for bad in [
            annotations(&[(DIR_ANNOTATION, "dumps")]),
            annotations(&[(DIR_ANNOTATION, "/d"), (MAX_SIZE_ANNOTATION, "lots")]),
        ] {
            let err = format!("{:#}", CoreDumps::from_annotations(&bad).unwrap_err());
            assert!(err.contains("io.containerd.wasm.coredump-"), "{err}");
        }
    }
}
