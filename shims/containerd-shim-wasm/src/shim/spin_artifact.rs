//! Spin OCI artifacts, as `spin registry push` writes them: the application's locked form (a
//! JSON document, "the locked app") in a layer of type [`LOCKED_APP_TYPE`] (older pushes made
//! it the manifest's config instead), one `application/vnd.wasm.content.layer.v1+wasm` layer
//! per component, and the components' files as [`DATA_LAYER_TYPE`] layers (one per file; files
//! of at most 128 bytes are only inlined in the locked app, base64) or as
//! [`ARCHIVE_LAYER_TYPE`] layers (a gzipped tar of a component's files). Either way the locked
//! app lists every file of a component as `{ "digest" | "inline", "path" }`, `path` relative
//! to the component's root.
//!
//! containerd unpacks none of these layers. [`super::wasm_layers`] writes the components'
//! modules into the empty rootfs as for any Wasm artifact (`/<sha256 hex>.wasm`); this module
//! adds what the Spin engine reads besides:
//!
//! - `/`[`LOCKED_APP_FILE`]: the locked app, byte for byte;
//! - `/`[`ASSETS_DIR`]`/<component id>/<path>`: every file of every component, from its
//!   inlined bytes, its data layer, or the archive layer that holds a file of its digest, so
//!   that each component's files are one directory to mount at the guest's `/` (as Spin's own
//!   loader assembles them).
//!
//! A file whose content is nowhere in the image, inlined bytes that do not match their digest,
//! an archive that does not unpack, a component id or a path that would leave its directory:
//! each fails `create`, naming the layer or the component and file.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path};

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The media type of the locked app (a layer, or the manifest's config).
pub const LOCKED_APP_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// One file of a component, as it is.
pub const DATA_LAYER_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// A gzipped tar of the files of a component.
pub const ARCHIVE_LAYER_TYPE: &str = "application/vnd.wasm.content.bundle.v1.tar+gzip";
/// The image config label that names the locked app's layer digest.
pub const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";

/// Where the locked app is written, at the root of the container's rootfs.
pub const LOCKED_APP_FILE: &str = "spin.lock.json";
/// The directory, at the root of the rootfs, of each component's files.
pub const ASSETS_DIR: &str = "spin-assets";

/// The parts of the locked app this module reads; the Spin engine reads the rest.
#[derive(Debug, Deserialize)]
struct LockedApp {
    #[serde(default)]
    components: Vec<LockedComponent>,
}

#[derive(Debug, Deserialize)]
struct LockedComponent {
    id: String,
    #[serde(default)]
    files: Vec<LockedFile>,
}

/// A `files` entry: Spin's content reference (flattened) and the path it goes to.
#[derive(Debug, Deserialize)]
struct LockedFile {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    inline: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    path: String,
}

/// The contents of the image's data and archive layers, by the `sha256:` digest of each file.
#[derive(Debug, Default)]
pub struct Contents {
    files: HashMap<String, Vec<u8>>,
}

impl Contents {
    /// Adds a data layer: its bytes are one file's.
    pub fn add_data_layer(&mut self, digest: &str, bytes: Vec<u8>) {
        self.files.insert(digest.to_owned(), bytes);
    }

    /// Adds every regular file of an archive layer (a gzipped tar), by the digest of its bytes.
    pub fn add_archive_layer(&mut self, digest: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let entries = archive
            .entries()
            .with_context(|| format!("archive layer {digest}: not a gzipped tar"))?;
        for entry in entries {
            let mut entry =
                entry.with_context(|| format!("archive layer {digest}: not a gzipped tar"))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let mut content = Vec::new();
            entry.read_to_end(&mut content).with_context(|| {
                format!(
                    "archive layer {digest}: read {}",
                    entry
                        .path()
                        .map_or_else(|_| "an entry".to_string(), |p| p.display().to_string())
                )
            })?;
            self.files.insert(sha256(&content), content);
        }
        Ok(())
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Writes the locked app (read from blob `locked_digest`) and every component's files into
/// `rootfs_dir` (see the module comment).
pub fn write(
    locked: &[u8],
    locked_digest: &str,
    contents: &Contents,
    rootfs_dir: &Path,
) -> anyhow::Result<()> {
    let app: LockedApp = serde_json::from_slice(locked)
        .with_context(|| format!("locked app {locked_digest}: not a Spin locked app"))?;
    let file = rootfs_dir.join(LOCKED_APP_FILE);
    std::fs::write(&file, locked)
        .with_context(|| format!("locked app {locked_digest}: write it to {}", file.display()))?;
    for component in &app.components {
        if component.files.is_empty() {
            continue;
        }
        let id = &component.id;
        if !is_relative_inside(id) || id.contains('/') {
            bail!("locked app {locked_digest}: component id {id:?} is not a plain name");
        }
        let root = rootfs_dir.join(ASSETS_DIR).join(id);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("component {id}: create {}", root.display()))?;
        for file in &component.files {
            let bytes = content_of(file, contents)
                .with_context(|| format!("locked app {locked_digest}: component {id}"))?;
            if !is_relative_inside(&file.path) {
                bail!(
                    "locked app {locked_digest}: component {id}: file path {:?} is not a \
                     relative path inside the component's files",
                    file.path
                );
            }
            let target = root.join(&file.path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("component {id}: create {}", parent.display()))?;
            }
            std::fs::write(&target, bytes).with_context(|| {
                format!(
                    "component {id}: write file {:?} to {}",
                    file.path,
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}

/// The bytes of a file: inlined (checked against its digest, if it has one), or a data or
/// archive layer's by digest.
fn content_of<'a>(file: &'a LockedFile, contents: &'a Contents) -> anyhow::Result<Vec<u8>> {
    let path = &file.path;
    if let Some(inline) = &file.inline {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(inline)
            .map_err(|e| anyhow!("file {path:?}: its inline content is not base64: {e}"))?;
        if let Some(digest) = &file.digest
            && sha256(&bytes) != *digest
        {
            bail!("file {path:?}: its inline content does not have its digest {digest}");
        }
        return Ok(bytes);
    }
    if let Some(digest) = &file.digest {
        return contents.files.get(digest).cloned().ok_or_else(|| {
            anyhow!(
                "file {path:?}: its content {digest} is in no data or archive layer of the image"
            )
        });
    }
    match &file.source {
        Some(source) => bail!(
            "file {path:?}: its content is {source}, outside the image (a locked app made for \
             `spin up`, not pushed with `spin registry push`)"
        ),
        None => bail!("file {path:?}: no content (neither inline nor digest)"),
    }
}

/// Whether `path` is relative and made of plain names only (no `..`, no root).
fn is_relative_inside(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, path, *content).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn files_come_from_inline_data_and_archive_layers() {
        let page = b"<html>a page longer than what Spin inlines</html>".repeat(4);
        let style = b"body { color: teal }".repeat(10);
        let small = b"hi\n";
        let locked = serde_json::json!({
            "spin_lock_version": 1,
            "triggers": [],
            "components": [
                {
                    "id": "web",
                    "source": { "content_type": "application/wasm", "digest": "sha256:00" },
                    "files": [
                        { "inline": b64(small), "digest": sha256(small), "path": "hi.txt" },
                        { "digest": sha256(&page), "path": "static/index.html" },
                        { "digest": sha256(&style), "path": "static/style.css" }
                    ]
                },
                {
                    "id": "api",
                    "source": { "content_type": "application/wasm", "digest": "sha256:01" }
                }
            ]
        });
        let locked = serde_json::to_vec(&locked).unwrap();
        let mut contents = Contents::default();
        contents.add_data_layer(&sha256(&page), page.clone());
        contents
            .add_archive_layer("sha256:aa", &archive(&[("static/style.css", &style)]))
            .unwrap();
        let rootfs = tempfile::tempdir().unwrap();
        write(&locked, "sha256:lock", &contents, rootfs.path()).unwrap();

        assert_eq!(
            std::fs::read(rootfs.path().join(LOCKED_APP_FILE)).unwrap(),
            locked
        );
        let web = rootfs.path().join(ASSETS_DIR).join("web");
        assert_eq!(std::fs::read(web.join("hi.txt")).unwrap(), small);
        assert_eq!(std::fs::read(web.join("static/index.html")).unwrap(), page);
        assert_eq!(std::fs::read(web.join("static/style.css")).unwrap(), style);
        assert!(!rootfs.path().join(ASSETS_DIR).join("api").exists());
    }

    fn error_of(files: serde_json::Value, contents: &Contents) -> String {
        let locked = serde_json::json!({
            "spin_lock_version": 1,
            "triggers": [],
            "components": [{ "id": "web", "source": {}, "files": files }]
        });
        let rootfs = tempfile::tempdir().unwrap();
        let error = write(
            &serde_json::to_vec(&locked).unwrap(),
            "sha256:lock",
            contents,
            rootfs.path(),
        )
        .unwrap_err();
        format!("{error:#}")
    }

    #[test]
    fn what_cannot_be_placed_is_named() {
        let none = Contents::default();
        let missing = error_of(
            serde_json::json!([{ "digest": "sha256:beef", "path": "a.txt" }]),
            &none,
        );
        assert!(
            missing.contains("component web")
                && missing.contains("\"a.txt\"")
                && missing.contains("sha256:beef is in no data or archive layer"),
            "{missing}"
        );
        let wrong = error_of(
            serde_json::json!([{ "inline": b64(b"x"), "digest": sha256(b"y"), "path": "x" }]),
            &none,
        );
        assert!(wrong.contains("does not have its digest"), "{wrong}");
        for path in ["../escape", "/abs", "a/../../b", ""] {
            let error = error_of(
                serde_json::json!([{ "inline": b64(b"x"), "path": path }]),
                &none,
            );
            assert!(error.contains("not a relative path"), "{path}: {error}");
        }
        for id in ["..", "a/b", "/abs"] {
            let locked = serde_json::json!({
                "components": [{ "id": id, "files": [{ "inline": b64(b"x"), "path": "x" }] }]
            });
            let rootfs = tempfile::tempdir().unwrap();
            let error = write(
                &serde_json::to_vec(&locked).unwrap(),
                "sha256:l",
                &none,
                rootfs.path(),
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("is not a plain name"), "{id}: {error}");
        }
        let local = error_of(
            serde_json::json!([{ "source": "file:///home/me/app/assets", "path": "/" }]),
            &none,
        );
        assert!(local.contains("outside the image"), "{local}");
        let not_locked = write(b"{\"components\": 3}", "sha256:lock", &none, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            not_locked.contains("locked app sha256:lock"),
            "{not_locked}"
        );
        let mut broken = Contents::default();
        let error = broken
            .add_archive_layer("sha256:ab", b"not gzip")
            .unwrap_err();
        assert!(format!("{error:#}").contains("archive layer sha256:ab"));
    }
}
