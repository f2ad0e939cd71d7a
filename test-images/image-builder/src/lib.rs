//! Builds small OCI images for tests and writes them as tarballs that both
//! `ctr images import` (OCI layout, `index.json`) and `docker load` (`manifest.json`) accept.
//!
//! ```
//! use image_builder::{ImageBuilder, wat_module};
//!
//! # fn main() -> anyhow::Result<()> {
//! let module = wat_module(r#"(module (func (export "_start")))"#)?;
//! let image = ImageBuilder::new("docker.io/library/tiny:latest")
//!     .platform("wasip1", "wasm")
//!     .file("/tiny.wasm", module, 0o755)
//!     .entrypoint(["/tiny.wasm"])
//!     .build()?;
//! assert_eq!(image.reference(), "docker.io/library/tiny:latest");
//! let tar_bytes = image.to_tar()?; // or image.write_tar("tiny.tar")?
//! # assert!(!tar_bytes.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! The output is deterministic (no timestamps, fixed order and owners), so the same input always
//! gives the same manifest digest. Nothing is validated beyond what the layout needs: a text file
//! as entrypoint or a broken module is exactly what failure tests want to build.

mod layer;
mod layout;
mod reference;
mod spin;
mod tarball;

use anyhow::{Context, Result};
use oci_spec::image::{
    Arch, ConfigBuilder, ImageConfigurationBuilder, MediaType, Os, Platform, PlatformBuilder,
};

use layer::{LayerTree, Node};
pub use layout::{ANNOTATION_CONTAINERD_IMAGE_NAME, OciArchive, TopLevel};
pub use spin::{
    DATA_LAYER_TYPE, INLINE_MAX, LOCKED_APP_DIGEST_LABEL, LOCKED_APP_TYPE, LockedAppPlace,
    SpinComponent, WASM_LAYER_TYPE, spin_artifact,
};

/// Builder for one single-platform image with one file-system layer (plus optional raw layers).
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    name: String,
    os: String,
    arch: String,
    variant: Option<String>,
    tree: LayerTree,
    /// Media type, bytes and title (`org.opencontainers.image.title`) of each raw layer.
    raw_layers: Vec<(String, Vec<u8>, Option<String>)>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<String>,
    working_dir: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    raw_config: Option<(String, Vec<u8>)>,
    top_level: TopLevel,
    docker_manifest: bool,
}

impl ImageBuilder {
    /// Starts an image named `name` (normalized like Docker: `app` becomes
    /// `docker.io/library/app:latest`) for platform `wasip1/wasm`, with a Docker `manifest.json`
    /// and `index.json` pointing straight at the manifest.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            os: "wasip1".to_owned(),
            arch: "wasm".to_owned(),
            variant: None,
            tree: LayerTree::default(),
            raw_layers: Vec::new(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            working_dir: None,
            labels: Default::default(),
            raw_config: None,
            top_level: TopLevel::default(),
            docker_manifest: true,
        }
    }

    /// Sets the platform (`wasip1`/`wasm`, `wasi`/`wasm32`, `linux`/`amd64`, ...), which goes
    /// into the config and the manifest's descriptor.
    pub fn platform(mut self, os: impl Into<String>, arch: impl Into<String>) -> Self {
        self.os = os.into();
        self.arch = arch.into();
        self
    }

    /// Sets the platform's CPU variant (e.g. `v8` for `linux/arm64`).
    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Adds a regular file at `path` (absolute or relative to the image root; parents are created
    /// with mode 0755). A later entry for the same path replaces an earlier one.
    pub fn file(mut self, path: impl Into<String>, content: impl Into<Vec<u8>>, mode: u32) -> Self {
        let content = content.into();
        self.tree.insert(path, Node::File { content, mode });
        self
    }

    /// Adds a directory with an explicit mode (only needed when 0755 is not what you want, or
    /// for an empty directory).
    pub fn dir(mut self, path: impl Into<String>, mode: u32) -> Self {
        self.tree.insert(path, Node::Dir { mode });
        self
    }

    /// Adds a symbolic link at `path` pointing to `target` (stored verbatim).
    pub fn symlink(mut self, path: impl Into<String>, target: impl Into<String>) -> Self {
        let target = target.into();
        self.tree.insert(path, Node::Symlink { target });
        self
    }

    /// Adds a layer whose blob is `content` as is, with `media_type`: e.g. a Wasm OCI artifact
    /// layer (`application/wasm`) that a shim reads from the content store. Raw layers follow
    /// the file-system layer, in the order they are added.
    pub fn raw_layer(mut self, media_type: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        self.raw_layers
            .push((media_type.into(), content.into(), None));
        self
    }

    /// [`ImageBuilder::raw_layer`] with a title, the file name the layer stands for (the
    /// `org.opencontainers.image.title` annotation of its descriptor).
    pub fn titled_raw_layer(
        mut self,
        media_type: impl Into<String>,
        content: impl Into<Vec<u8>>,
        title: impl Into<String>,
    ) -> Self {
        self.raw_layers
            .push((media_type.into(), content.into(), Some(title.into())));
        self
    }

    /// Sets the config's `Entrypoint`.
    pub fn entrypoint<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the config's `Cmd` (the default arguments after the entrypoint).
    pub fn cmd<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.cmd = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Appends `K=V` entries to the config's `Env`.
    pub fn env<S: Into<String>>(mut self, vars: impl IntoIterator<Item = S>) -> Self {
        self.env.extend(vars.into_iter().map(Into::into));
        self
    }

    /// Sets the config's `WorkingDir`.
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Adds a label to the config (`config.Labels`).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Makes the manifest's config this blob of `media_type` instead of an image configuration
    /// (older Spin artifacts have their locked app there).
    pub fn raw_config(
        mut self,
        media_type: impl Into<String>,
        content: impl Into<Vec<u8>>,
    ) -> Self {
        self.raw_config = Some((media_type.into(), content.into()));
        self
    }

    /// Chooses what `index.json` points at (default: the manifest).
    pub fn top_level(mut self, top_level: TopLevel) -> Self {
        self.top_level = top_level;
        self
    }

    /// Whether to add Docker's `manifest.json` (default: yes). containerd ignores it when the
    /// OCI layout is present; `docker load` needs it, and cannot load raw (non-tar) layers.
    pub fn docker_manifest(mut self, enabled: bool) -> Self {
        self.docker_manifest = enabled;
        self
    }

    /// Builds the layout in memory; fails on a bad name or bad paths.
    pub fn build(&self) -> Result<OciArchive> {
        let name = reference::parse_image_name(&self.name)?;
        let mut layers = Vec::new();
        if !self.tree.is_empty() {
            layers.push(layout::Layer {
                media_type: MediaType::ImageLayer,
                title: None,
                content: self.tree.to_tar()?,
            });
        }
        layers.extend(
            self.raw_layers
                .iter()
                .map(|(media_type, content, title)| layout::Layer {
                    media_type: MediaType::from(media_type.as_str()),
                    title: title.clone(),
                    content: content.clone(),
                }),
        );
        layout::assemble(layout::LayoutInput {
            platform: self.platform_descriptor()?,
            config: self.image_configuration()?,
            raw_config: self.raw_config.clone(),
            name,
            layers,
            top_level: self.top_level,
            docker_manifest: self.docker_manifest,
        })
    }

    /// Builds the image and writes it as a tar file at `path`.
    pub fn write_tar(&self, path: impl AsRef<std::path::Path>) -> Result<OciArchive> {
        let archive = self.build()?;
        archive.write_tar(path)?;
        Ok(archive)
    }

    fn platform_descriptor(&self) -> Result<Platform> {
        let mut builder = PlatformBuilder::default()
            .os(Os::from(self.os.as_str()))
            .architecture(Arch::from(self.arch.as_str()));
        if let Some(variant) = &self.variant {
            builder = builder.variant(variant.clone());
        }
        builder
            .build()
            .with_context(|| format!("invalid platform {}/{}", self.os, self.arch))
    }

    fn image_configuration(&self) -> Result<oci_spec::image::ImageConfiguration> {
        let mut config = ConfigBuilder::default();
        if let Some(entrypoint) = &self.entrypoint {
            config = config.entrypoint(entrypoint.clone());
        }
        if let Some(cmd) = &self.cmd {
            config = config.cmd(cmd.clone());
        }
        if !self.env.is_empty() {
            config = config.env(self.env.clone());
        }
        if let Some(dir) = &self.working_dir {
            config = config.working_dir(dir.clone());
        }
        if !self.labels.is_empty() {
            config = config.labels(
                self.labels
                    .clone()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        }
        let mut image = ImageConfigurationBuilder::default()
            .os(Os::from(self.os.as_str()))
            .architecture(Arch::from(self.arch.as_str()))
            .config(
                config
                    .build()
                    .context("cannot build the image's run config")?,
            );
        if let Some(variant) = &self.variant {
            image = image.variant(variant.clone());
        }
        image
            .build()
            .context("cannot build the image configuration")
    }
}

/// Compiles WebAssembly text to a binary module, e.g. to build a module that imports an unknown
/// function for a failure test.
pub fn wat_module(text: &str) -> Result<Vec<u8>> {
    wat::parse_str(text).context("cannot compile WebAssembly text")
}

/// A WASI preview 1 module whose `_start` writes `text` to stdout: a tiny program of its own
/// for a test that needs a module nothing else uses (its own cache entry, image, platform).
pub fn wasi_print_module(text: &str) -> Result<Vec<u8>> {
    // The text sits at offset 16; the iovec {ptr, len} at 0; fd_write's result count at 8.
    let data: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat_module(&format!(
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write"
               (func $fd_write (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 16) "{data}")
             (func (export "_start")
               (i32.store (i32.const 0) (i32.const 16))
               (i32.store (i32.const 4) (i32.const {len}))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len()
    ))
}

#[cfg(test)]
mod tests;
