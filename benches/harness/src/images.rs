//! Images in the private containerd: the demo tarballs of scripts/build-test-images.sh, and
//! images built here with the image-builder library.

use std::path::Path;

use anyhow::{Context, Result};
use image_builder::ImageBuilder;

use shim_conformance::api::{Api, Template};

use crate::containerd::Containerd;
use crate::variants::Image;

/// Imports an OCI tarball (every platform in it, unpacked).
pub fn import(containerd: &Containerd, tarball: &Path) -> Result<()> {
    if !tarball.is_file() {
        anyhow::bail!(
            "test image {} is missing: run `make images`",
            tarball.display()
        );
    }
    let path = tarball.to_string_lossy();
    containerd
        .ctr(["images", "import", "--all-platforms", &path])
        .output()?
        .success()
        .with_context(|| format!("cannot import {}", tarball.display()))?;
    Ok(())
}

/// Builds a one-file Wasm image around `module` and imports it.
pub fn import_module(
    containerd: &Containerd,
    work_dir: &Path,
    image: &Image,
    module: Vec<u8>,
) -> Result<()> {
    let (os, arch) = image
        .platform
        .split_once('/')
        .with_context(|| format!("platform {} is not os/arch", image.platform))?;
    let tarball = work_dir.join(format!(
        "{}.tar",
        image.program.trim_start_matches('/').replace('/', "_")
    ));
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    ImageBuilder::new(image.reference.clone())
        .platform(os, arch)
        .file(image.program.clone(), module, 0o755)
        .entrypoint([image.program.clone()])
        .write_tar(&tarball)
        .with_context(|| format!("cannot build image {}", image.reference))?;
    import(containerd, &tarball)
}

/// The spec and snapshot that API-created containers of `image` use, taken from a container
/// that `ctr container create` makes (and that is removed again right away).
pub fn template(containerd: &Containerd, api: &Api, image: &Image) -> Result<Template> {
    let id = format!(
        "template-{}",
        image
            .program
            .trim_start_matches('/')
            .replace(['/', '.'], "-")
    );
    containerd
        .ctr(["container", "create", &image.reference, &id, &image.program])
        .output()?
        .success()
        .with_context(|| format!("cannot create a template container of {}", image.reference))?;
    let template = api.template(&id);
    let removed = containerd.ctr(["container", "rm", &id]).output();
    let template = template?;
    removed?.success()?;
    Ok(template)
}
