//! Spin OCI artifacts, laid out as `spin registry push` lays them out: from a locked app whose
//! components have no content yet, the modules and the files, [`spin_artifact`] fills each
//! component's `source` and `files` with digests (a file of at most [`INLINE_MAX`] bytes also
//! inlined, base64, and given no layer), and adds the layers: the locked app as an
//! [`LOCKED_APP_TYPE`] layer, named by the config label [`LOCKED_APP_DIGEST_LABEL`], one
//! `application/vnd.wasm.content.layer.v1+wasm` layer per module and one [`DATA_LAYER_TYPE`]
//! layer per file that is not inlined. Older Spin releases made the locked app the manifest's
//! config instead ([`LockedAppPlace::Config`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ImageBuilder;

/// The locked app's media type.
pub const LOCKED_APP_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// A component's module.
pub const WASM_LAYER_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// One file of a component.
pub const DATA_LAYER_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// The config label naming the locked app's layer.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";
/// Files of at most this many bytes are inlined in the locked app (Spin's default).
pub const INLINE_MAX: usize = 128;

/// What goes into one component: its module, and its files by path (relative to the
/// component's root).
#[derive(Debug, Clone, Default)]
pub struct SpinComponent {
    pub module: Vec<u8>,
    pub files: BTreeMap<String, Vec<u8>>,
}

fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Where the locked app goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockedAppPlace {
    /// A layer, named by the config's label (what `spin registry push` writes today).
    Layer,
    /// The manifest's config (what older Spin releases pushed).
    Config,
}

/// Adds a Spin application to `image`: `locked` is the locked app (`components[].id` set,
/// `source` and `files` left to this function), `components` what each id holds, `place`
/// where the locked app goes.
pub fn spin_artifact(
    mut image: ImageBuilder,
    mut locked: Value,
    components: &BTreeMap<String, SpinComponent>,
    place: LockedAppPlace,
) -> Result<ImageBuilder> {
    let listed = locked
        .get_mut("components")
        .and_then(Value::as_array_mut)
        .context("the locked app has no components array")?;
    let mut modules = BTreeSet::new();
    let mut data = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for component in listed {
        let id = component
            .get("id")
            .and_then(Value::as_str)
            .context("a component of the locked app has no id")?
            .to_owned();
        let Some(content) = components.get(&id) else {
            bail!("component {id:?} of the locked app: no module given");
        };
        seen.insert(id.clone());
        component["source"] = json!({
            "content_type": "application/wasm",
            "digest": digest(&content.module),
        });
        if modules.insert(digest(&content.module)) {
            image = image.raw_layer(WASM_LAYER_TYPE, content.module.clone());
        }
        let mut files = Vec::new();
        for (path, bytes) in &content.files {
            let mut entry = json!({ "digest": digest(bytes), "path": path });
            if bytes.len() <= INLINE_MAX {
                entry["inline"] = base64(bytes).into();
            } else if data.insert(digest(bytes)) {
                image = image.raw_layer(DATA_LAYER_TYPE, bytes.clone());
            }
            files.push(entry);
        }
        if !files.is_empty() {
            component["files"] = files.into();
        }
    }
    if let Some(extra) = components.keys().find(|id| !seen.contains(*id)) {
        bail!("component {extra:?} is not in the locked app");
    }
    let locked = serde_json::to_vec(&locked).context("cannot serialize the locked app")?;
    Ok(match place {
        LockedAppPlace::Layer => image
            .label(LOCKED_APP_DIGEST_LABEL, digest(&locked))
            .raw_layer(LOCKED_APP_TYPE, locked),
        LockedAppPlace::Config => image.raw_config(LOCKED_APP_TYPE, locked),
    })
}
