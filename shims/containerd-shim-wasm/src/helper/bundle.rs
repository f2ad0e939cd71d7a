//! The bundle's `config.json`, read once by the helper with messages that name the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use oci_spec::runtime::Spec;
use serde::Deserialize;

/// Reads `config.json` with a message that says which bundle and what is wrong.
pub fn load_spec(bundle: &Path) -> anyhow::Result<Spec> {
    Ok(load_spec_json(bundle)?.1)
}

/// Reads `config.json` once: as JSON (what [`super::spec_compat`] rewrites, unknown fields
/// kept) and as the OCI spec it holds.
pub fn load_spec_json(bundle: &Path) -> anyhow::Result<(serde_json::Value, Spec)> {
    let path = bundle.join("config.json");
    let malformed = || format!("{}: malformed OCI runtime spec", path.display());
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_slice(&text).with_context(malformed)?;
    let spec = Spec::deserialize(&json).with_context(malformed)?;
    Ok((json, spec))
}

pub fn rootfs_path(spec: &Spec, bundle: &Path) -> anyhow::Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| {
        anyhow!(
            "{}: the spec has no root",
            bundle.join("config.json").display()
        )
    })?;
    Ok(bundle.join(root.path()))
}
