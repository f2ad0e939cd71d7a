//! The largest module the shim will load, so that a hostile or broken image cannot make the
//! create helper read and compile gigabytes.
//!
//! The limit is the node's, not the container's: the runtime option `MaxModuleSize` or else
//! `WASM_SHIM_MAX_MODULE_SIZE` in containerd's environment (the shim inherits it), in bytes
//! with an optional `K`, `M` or `G` suffix (powers of 1024), or `off`. Without either the
//! limit is [`DEFAULT_MAX_MODULE_SIZE`].

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::parse_size;

/// The environment variable that sets the limit.
pub const MAX_MODULE_SIZE_ENV: &str = "WASM_SHIM_MAX_MODULE_SIZE";

/// 128 MiB: far above real modules (interpreters compiled to Wasm are tens of MiB).
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 128 << 20;

/// The limit in force: `None` when it is switched off.
pub fn max_module_size() -> anyhow::Result<Option<u64>> {
    if let Some(limit) = crate::config::for_process().max_module_size()? {
        return Ok(limit);
    }
    match std::env::var(MAX_MODULE_SIZE_ENV) {
        Ok(value) => parse_size(&value)
            .with_context(|| format!("{MAX_MODULE_SIZE_ENV}={value:?} in the shim's environment")),
        Err(_) => Ok(Some(DEFAULT_MAX_MODULE_SIZE)),
    }
}

/// Reads the module at `host_path` (shown as `shown` in errors) unless it is larger than the
/// limit. The file is read through one descriptor up to one byte past the limit, so a file
/// that grows after the size check is caught too.
pub fn read_module(host_path: &Path, shown: &str) -> anyhow::Result<Vec<u8>> {
    read_limited(host_path, shown, max_module_size()?)
}

fn read_limited(host_path: &Path, shown: &str, limit: Option<u64>) -> anyhow::Result<Vec<u8>> {
    let file = File::open(host_path).with_context(|| format!("{shown}: cannot read it"))?;
    let size = file
        .metadata()
        .with_context(|| format!("{shown}: cannot read it"))?
        .len();
    let Some(limit) = limit else {
        let mut bytes = Vec::with_capacity(size as usize);
        (&file)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{shown}: cannot read it"))?;
        return Ok(bytes);
    };
    let too_large = |size: u64| {
        anyhow::anyhow!(
            "{shown}: the module is {size} bytes, more than the limit of {limit} bytes \
             (set {MAX_MODULE_SIZE_ENV} in containerd's environment to change it)"
        )
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("{shown}: cannot read it"))?;
    if bytes.len() as u64 > limit {
        bail!(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_over_the_limit_is_refused_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wasm");
        std::fs::write(&path, vec![0u8; 101]).unwrap();
        let err = read_limited(&path, "/m.wasm", Some(100))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/m.wasm: the module is 101 bytes, more than the limit of 100 bytes"),
            "{err}"
        );
        assert!(err.contains(MAX_MODULE_SIZE_ENV), "{err}");
        assert_eq!(
            read_limited(&path, "/m.wasm", Some(101)).unwrap().len(),
            101
        );
        assert_eq!(read_limited(&path, "/m.wasm", None).unwrap().len(), 101);
        let err = read_limited(&dir.path().join("gone"), "/gone.wasm", None).unwrap_err();
        assert!(
            err.to_string().starts_with("/gone.wasm: cannot read it"),
            "{err}"
        );
    }
}
