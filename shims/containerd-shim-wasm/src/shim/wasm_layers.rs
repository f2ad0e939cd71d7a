//! Wasm OCI artifacts: images whose layers are modules as they are, not tar archives (the CNCF
//! Wasm OCI artifact and Spin's `application/vnd.wasm.content.layer.v1+wasm`, wkg's
//! `application/wasm`, runwasi's component layer). containerd 1.6.25 / 1.7.7 and later create
//! containers of such images without unpacking those layers, so the container's rootfs is an
//! empty snapshot. The shim reads the modules from containerd's content store, through
//! containerd's API (the container's record names its image, the image its manifest), and
//! writes them into that snapshot before the helper mounts it: each module appears at
//! `/<name>`, its layer's `org.opencontainers.image.title`, or `/<digest>.wasm`.
//!
//! A Spin OCI artifact (see [`super::spin_artifact`]) gets its modules named by digest whatever
//! their titles (the locked app names them so), and its locked app and files besides.
//!
//! Only a rootfs that may be such a snapshot is looked at, so an ordinary image costs no call to
//! containerd: one bind mount (a snapshot without parent: no layer was unpacked), or no mount at
//! all, where the client mounted the rootfs itself (Docker) and the spec's `root.path` is it.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use containerd_client::services::v1::{GetContainerRequest, GetImageRequest, ReadContentRequest};
use containerd_client::tonic::Request;
use containerd_client::{Client, with_namespace};
use serde::Deserialize;

use super::spin_artifact::{self, ARCHIVE_LAYER_TYPE, Contents, DATA_LAYER_TYPE, LOCKED_APP_TYPE};
use crate::helper::bundle::{load_spec, rootfs_path};
use crate::request::RootfsMount;

/// The layer media types that are a Wasm module (or component) as it is.
pub const WASM_LAYER_TYPES: [&str; 3] = [
    "application/vnd.wasm.content.layer.v1+wasm",
    "application/wasm",
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
];

/// The annotation that names a layer's file.
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// The operating systems of a Wasm image's platform, to pick its manifest from an index.
const WASM_OSES: [&str; 3] = ["wasi", "wasip1", "wasip2"];

/// Where the modules would go if the rootfs may be an empty snapshot: the source of its one
/// bind mount, or without mounts the spec's `root.path`; `None` for an ordinary rootfs.
pub fn unpacked_nothing(mounts: &[RootfsMount], bundle: &Path) -> anyhow::Result<Option<PathBuf>> {
    Ok(match mounts {
        [only] if only.fs_type == "bind" => Some(PathBuf::from(&only.source)),
        [] => Some(rootfs_path(&load_spec(bundle)?, bundle)?),
        _ => None,
    })
}

/// A descriptor as the OCI image spec writes it (the fields used here).
#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    os: String,
}

/// An image index or manifest (the fields used here).
#[derive(Debug, Deserialize)]
struct Document {
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

impl Document {
    /// The locked app of a Spin artifact: a layer of its type, or (older pushes) the config.
    fn spin_locked_app(&self) -> Option<&Descriptor> {
        self.layers
            .iter()
            .chain(&self.config)
            .find(|d| d.media_type == LOCKED_APP_TYPE)
    }
}

/// Writes the Wasm layers of container `id`'s image into `rootfs_dir`; returns their paths in
/// the container, in layer order (empty when the image has none).
pub fn write_modules(
    address: &str,
    namespace: &str,
    id: &str,
    rootfs_dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start a runtime for containerd's API")?;
    runtime.block_on(async {
        let client = Client::from_path(address)
            .await
            .with_context(|| format!("connect to containerd at {address}"))?;
        let image = container_image(&client, namespace, id).await?;
        let manifest = manifest_of(&client, namespace, &image).await?;
        let spin = manifest.spin_locked_app();
        let mut written = Vec::new();
        for layer in manifest
            .layers
            .iter()
            .filter(|l| WASM_LAYER_TYPES.contains(&l.media_type.as_str()))
        {
            let name = if spin.is_some() {
                digest_name(layer)
            } else {
                file_name(layer)?
            };
            let bytes = read_blob(&client, namespace, &layer.digest).await?;
            let path = rootfs_dir.join(&name);
            std::fs::write(&path, bytes).with_context(|| {
                format!(
                    "write layer {} of image {image} to {}",
                    layer.digest,
                    path.display()
                )
            })?;
            written.push(format!("/{name}"));
        }
        if let Some(locked) = spin {
            write_spin_app(&client, namespace, &manifest, &locked.digest, rootfs_dir)
                .await
                .with_context(|| format!("image {image}: a Spin application"))?;
        }
        Ok(written)
    })
}

/// Writes a Spin artifact's locked app and its components' files (see [`spin_artifact`]).
async fn write_spin_app(
    client: &Client,
    namespace: &str,
    manifest: &Document,
    locked_digest: &str,
    rootfs_dir: &Path,
) -> anyhow::Result<()> {
    let locked = read_blob(client, namespace, locked_digest).await?;
    let mut contents = Contents::default();
    for layer in &manifest.layers {
        match layer.media_type.as_str() {
            DATA_LAYER_TYPE => {
                let bytes = read_blob(client, namespace, &layer.digest).await?;
                contents.add_data_layer(&layer.digest, bytes);
            }
            ARCHIVE_LAYER_TYPE => {
                let bytes = read_blob(client, namespace, &layer.digest).await?;
                contents.add_archive_layer(&layer.digest, &bytes)?;
            }
            _ => {}
        }
    }
    spin_artifact::write(&locked, locked_digest, &contents, rootfs_dir)
}

async fn container_image(client: &Client, namespace: &str, id: &str) -> anyhow::Result<String> {
    let request = with_namespace!(GetContainerRequest { id: id.to_owned() }, namespace);
    let container = client
        .containers()
        .get(request)
        .await
        .with_context(|| format!("get container {id} from containerd"))?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("containerd has no record of container {id}"))?;
    Ok(container.image)
}

/// The image's manifest: the target itself, or from an index the Wasm platform's (or the
/// only) manifest.
async fn manifest_of(client: &Client, namespace: &str, image: &str) -> anyhow::Result<Document> {
    if image.is_empty() {
        return Ok(Document {
            manifests: Vec::new(),
            config: None,
            layers: Vec::new(),
        });
    }
    let request = with_namespace!(
        GetImageRequest {
            name: image.to_owned()
        },
        namespace
    );
    let target = client
        .images()
        .get(request)
        .await
        .with_context(|| format!("get image {image} from containerd"))?
        .into_inner()
        .image
        .and_then(|i| i.target)
        .ok_or_else(|| anyhow!("image {image} has no target"))?;
    let document = read_document(client, namespace, &target.digest).await?;
    if document.manifests.is_empty() {
        return Ok(document);
    }
    let chosen = match document.manifests.as_slice() {
        [only] => only,
        many => many
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| WASM_OSES.contains(&p.os.as_str()))
            })
            .ok_or_else(|| {
                anyhow!("image {image}: no manifest for a Wasm platform in its index")
            })?,
    };
    read_document(client, namespace, &chosen.digest).await
}

async fn read_document(client: &Client, namespace: &str, digest: &str) -> anyhow::Result<Document> {
    let bytes = read_blob(client, namespace, digest).await?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{digest} is not an OCI index or manifest"))
}

async fn read_blob(client: &Client, namespace: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
    let request = with_namespace!(
        ReadContentRequest {
            digest: digest.to_owned(),
            offset: 0,
            size: 0,
        },
        namespace
    );
    let mut stream = client
        .content()
        .read(request)
        .await
        .with_context(|| format!("read {digest} from containerd's content store"))?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .with_context(|| format!("read {digest} from containerd's content store"))?
    {
        bytes.extend_from_slice(&chunk.data);
    }
    Ok(bytes)
}

/// The file a layer becomes: its title (a plain file name), or its digest.
fn file_name(layer: &Descriptor) -> anyhow::Result<String> {
    if let Some(title) = layer.annotations.get(TITLE_ANNOTATION) {
        if title.is_empty() || title.contains('/') || title == "." || title == ".." {
            bail!(
                "layer {}: its {TITLE_ANNOTATION} {title:?} is not a plain file name",
                layer.digest
            );
        }
        return Ok(title.clone());
    }
    Ok(digest_name(layer))
}

/// The file a layer becomes by its digest: `<hex>.wasm`.
fn digest_name(layer: &Descriptor) -> String {
    let hex = layer.digest.rsplit(':').next().unwrap_or(&layer.digest);
    format!("{hex}.wasm")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(annotations: &[(&str, &str)]) -> Descriptor {
        Descriptor {
            media_type: WASM_LAYER_TYPES[0].into(),
            digest: "sha256:abc".into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            platform: None,
        }
    }

    #[test]
    fn a_layer_is_named_by_its_title_or_digest() {
        assert_eq!(file_name(&layer(&[])).unwrap(), "abc.wasm");
        let titled = layer(&[(TITLE_ANNOTATION, "app.wasm")]);
        assert_eq!(file_name(&titled).unwrap(), "app.wasm");
        for bad in ["", "../x.wasm", "a/b.wasm", ".."] {
            let error = file_name(&layer(&[(TITLE_ANNOTATION, bad)])).unwrap_err();
            assert!(
                format!("{error}").contains("plain file name"),
                "{bad:?}: {error}"
            );
        }
    }

    #[test]
    fn a_spin_artifact_is_known_by_its_locked_app() {
        let manifest = |config: &str, layers: &[&str]| -> Document {
            let descriptor = |media_type: &str| serde_json::json!({ "mediaType": media_type, "digest": format!("sha256:{media_type}") });
            serde_json::from_value(serde_json::json!({
                "config": descriptor(config),
                "layers": layers.iter().map(|t| descriptor(t)).collect::<Vec<_>>(),
            }))
            .unwrap()
        };
        let image_config = "application/vnd.oci.image.config.v1+json";
        let pushed = manifest(image_config, &[WASM_LAYER_TYPES[0], LOCKED_APP_TYPE]);
        let locked = pushed.spin_locked_app().map(|d| d.digest.as_str());
        assert_eq!(locked, Some(format!("sha256:{LOCKED_APP_TYPE}").as_str()));
        let older = manifest(LOCKED_APP_TYPE, &[WASM_LAYER_TYPES[0]]);
        assert!(older.spin_locked_app().is_some());
        let plain = manifest(image_config, &[WASM_LAYER_TYPES[0]]);
        assert!(plain.spin_locked_app().is_none());
    }

    #[test]
    fn only_an_empty_snapshot_is_looked_at() {
        let mount = |fs_type: &str| RootfsMount {
            fs_type: fs_type.into(),
            source: "/snapshots/1/fs".into(),
            options: vec!["rbind".into()],
        };
        let bundle = tempfile::tempdir().unwrap();
        let looked_at = |mounts: &[RootfsMount]| unpacked_nothing(mounts, bundle.path()).unwrap();
        assert_eq!(
            looked_at(&[mount("bind")]),
            Some(PathBuf::from("/snapshots/1/fs"))
        );
        assert_eq!(looked_at(&[mount("overlay")]), None);
        assert_eq!(looked_at(&[mount("bind"), mount("bind")]), None);
        // No mount: the client mounted the rootfs where the spec says.
        let spec = r#"{"ociVersion": "1.0.2", "root": {"path": "/var/lib/docker/rootfs/x"}}"#;
        std::fs::write(bundle.path().join("config.json"), spec).unwrap();
        assert_eq!(
            looked_at(&[]),
            Some(PathBuf::from("/var/lib/docker/rootfs/x"))
        );
    }
}
