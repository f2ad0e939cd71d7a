//! Assembles the OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/*`) plus Docker's
//! `manifest.json`, and writes it as one tar.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};
use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, ImageConfiguration, ImageIndexBuilder, ImageManifestBuilder,
    MediaType, OciLayoutBuilder, Platform, SCHEMA_VERSION, Sha256Digest,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::reference::ImageName;
use crate::tarball::DeterministicTar;

/// The annotation containerd's importer reads the image name from (`ctr images import`).
pub const ANNOTATION_CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// What `index.json` points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopLevel {
    /// `index.json` -> image manifest: the usual single-platform OCI layout.
    #[default]
    Manifest,
    /// `index.json` -> image index blob -> image manifest, as multi-platform images are stored.
    ImageIndex,
}

/// The annotation naming the file a layer stands for.
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// A layer's bytes and media type; layers are stored uncompressed, so the diff ID is the digest.
pub(crate) struct Layer {
    pub(crate) media_type: MediaType,
    pub(crate) content: Vec<u8>,
    /// The file name it stands for, annotated on its descriptor.
    pub(crate) title: Option<String>,
}

/// Everything that goes into the layout.
pub(crate) struct LayoutInput {
    pub(crate) name: ImageName,
    pub(crate) platform: Platform,
    /// The image configuration without its `rootfs`, which is derived from `layers`.
    pub(crate) config: ImageConfiguration,
    /// A config blob to use instead of `config`: its media type and bytes.
    pub(crate) raw_config: Option<(String, Vec<u8>)>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) top_level: TopLevel,
    pub(crate) docker_manifest: bool,
}

/// A built image: the files of its OCI layout, ready to be written as a tar.
#[derive(Debug, Clone)]
pub struct OciArchive {
    reference: String,
    manifest_digest: String,
    /// Archive paths (`index.json`, `blobs/sha256/<hex>`, ...) and contents, in archive order.
    files: Vec<(String, Vec<u8>)>,
}

impl OciArchive {
    /// The full image name, e.g. `docker.io/library/wasi-demo-app:latest`.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The digest of the image manifest, `sha256:<hex>`.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// The content of one file of the layout, e.g. `index.json` or `blobs/sha256/<hex>`.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(name, _)| name == path)
            .map(|(_, content)| content.as_slice())
    }

    /// The archive as tar bytes; identical input gives identical bytes.
    pub fn to_tar(&self) -> Result<Vec<u8>> {
        let mut tar = DeterministicTar::new();
        tar.dir("blobs", 0o755)?;
        tar.dir("blobs/sha256", 0o755)?;
        for (path, content) in &self.files {
            tar.file(path, content, 0o644)?;
        }
        tar.finish()
    }

    /// Writes the tar to `path` (through a temporary file, so a failure leaves no partial image).
    pub fn write_tar(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let partial = path.with_extension("tar.partial");
        std::fs::write(&partial, self.to_tar()?)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))
    }
}

/// Content-addressed blobs, keyed by hex digest (sorted, so the archive order is fixed).
#[derive(Default)]
struct Blobs(BTreeMap<String, Vec<u8>>);

impl Blobs {
    fn add(&mut self, media_type: MediaType, content: Vec<u8>) -> Result<Descriptor> {
        let hex = format!("{:x}", Sha256::digest(&content));
        let digest = Sha256Digest::from_str(&hex)
            .with_context(|| format!("sha256 digest {hex} was rejected"))?;
        let descriptor = Descriptor::new(media_type, content.len() as u64, digest);
        self.0.insert(hex, content);
        Ok(descriptor)
    }

    fn add_json(&mut self, media_type: MediaType, value: &impl Serialize) -> Result<Descriptor> {
        self.add(media_type, canonical_json(value)?)
    }
}

pub(crate) fn assemble(input: LayoutInput) -> Result<OciArchive> {
    let mut blobs = Blobs::default();
    let mut config = input.config;
    config.rootfs_mut().set_diff_ids(Vec::new());
    let mut layer_descriptors = Vec::new();
    for layer in input.layers {
        // Only file-system layers are in the config's rootfs: containerd unpacks those and
        // checks their count against the diff IDs; a raw layer (a Wasm artifact's module) is
        // content it leaves packed.
        let unpacked = layer.media_type == MediaType::ImageLayer;
        let mut descriptor = blobs.add(layer.media_type, layer.content)?;
        if let Some(title) = layer.title {
            descriptor.set_annotations(Some([(TITLE_ANNOTATION.to_owned(), title)].into()));
        }
        if unpacked {
            config
                .rootfs_mut()
                .diff_ids_mut()
                .push(descriptor.digest().to_string());
        }
        layer_descriptors.push(descriptor);
    }
    let config_descriptor = match input.raw_config {
        Some((media_type, content)) => blobs.add(MediaType::from(media_type.as_str()), content)?,
        None => blobs.add_json(MediaType::ImageConfig, &config)?,
    };

    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor.clone())
        .layers(layer_descriptors.clone())
        .build()
        .context("cannot build the image manifest")?;
    let mut manifest_descriptor = blobs.add_json(MediaType::ImageManifest, &manifest)?;
    manifest_descriptor.set_platform(Some(input.platform));
    let manifest_digest = manifest_descriptor.digest().to_string();

    let mut top_descriptor = match input.top_level {
        TopLevel::Manifest => manifest_descriptor,
        TopLevel::ImageIndex => {
            let nested = image_index(vec![manifest_descriptor])?;
            blobs.add_json(MediaType::ImageIndex, &nested)?
        }
    };
    top_descriptor.set_annotations(Some(HashMap::from([
        (
            ANNOTATION_CONTAINERD_IMAGE_NAME.to_owned(),
            input.name.full.clone(),
        ),
        (ANNOTATION_REF_NAME.to_owned(), input.name.tag.clone()),
    ])));

    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .context("cannot build the oci-layout file")?;
    let mut files = vec![
        ("oci-layout".to_owned(), canonical_json(&layout)?),
        (
            "index.json".to_owned(),
            canonical_json(&image_index(vec![top_descriptor])?)?,
        ),
    ];
    if input.docker_manifest {
        let docker = docker_manifest(&input.name, &config_descriptor, &layer_descriptors);
        files.push(("manifest.json".to_owned(), canonical_json(&docker)?));
    }
    files.extend(
        blobs
            .0
            .into_iter()
            .map(|(hex, content)| (format!("blobs/sha256/{hex}"), content)),
    );
    Ok(OciArchive {
        reference: input.name.full,
        manifest_digest,
        files,
    })
}

fn image_index(manifests: Vec<Descriptor>) -> Result<oci_spec::image::ImageIndex> {
    ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .context("cannot build an image index")
}

/// Docker's `manifest.json` (what `docker load` reads): one entry naming config and layers by
/// their path in the archive.
fn docker_manifest(
    name: &ImageName,
    config: &Descriptor,
    layers: &[Descriptor],
) -> serde_json::Value {
    let blob_path =
        |descriptor: &Descriptor| format!("blobs/sha256/{}", descriptor.digest().digest());
    serde_json::json!([{
        "Config": blob_path(config),
        "RepoTags": [name.full],
        "Layers": layers.iter().map(blob_path).collect::<Vec<_>>(),
    }])
}

/// JSON with object keys sorted at every level: oci-spec keeps annotations in a `HashMap`,
/// whose order changes from run to run, and digests must not.
fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>> {
    fn sort_keys(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
            }
            other => other,
        }
    }
    let value = serde_json::to_value(value).context("cannot convert a layout object to JSON")?;
    serde_json::to_vec(&sort_keys(value)).context("cannot serialize a layout object")
}
