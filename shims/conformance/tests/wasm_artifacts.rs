//! Wasm OCI artifacts: images whose layers are modules as they are, not tar archives, in each
//! media type the field uses. containerd 1.7 and 2.x create such containers without unpacking
//! those layers (the rootfs is empty); the shim then reads the module from containerd's content
//! store. containerd 1.6.20 (Debian 12's) refuses such images itself, before any shim.

use anyhow::{Result, bail};
use image_builder::ImageBuilder;
use sha2::{Digest, Sha256};
use shim_conformance::container::Container;
use shim_conformance::images::{TestImage, demo_module_path};
use shim_conformance::target::{Case, Target, check_cases, wasm_shim_targets};

fn artifact(media_type: &'static str) -> Result<ImageBuilder> {
    let module = std::fs::read(demo_module_path())?;
    Ok(
        ImageBuilder::new(format!("wasm-artifact-{}", short(media_type)))
            .platform("wasi", "wasm")
            .raw_layer(media_type, module),
    )
}

/// A reference-safe name for a media type.
fn short(media_type: &str) -> String {
    media_type
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

static CNCF: TestImage = TestImage::built(
    "docker.io/library/wasm-artifact-application-vnd-wasm-content-layer-v1-wasm:latest",
    "wasi/wasm",
    || artifact("application/vnd.wasm.content.layer.v1+wasm"),
);
static WKG: TestImage = TestImage::built(
    "docker.io/library/wasm-artifact-application-wasm:latest",
    "wasi/wasm",
    || artifact("application/wasm"),
);
static RUNWASI: TestImage = TestImage::built(
    "docker.io/library/wasm-artifact-application-vnd-bytecodealliance-wasm-component-layer-v0-wasm:latest",
    "wasi/wasm",
    || artifact("application/vnd.bytecodealliance.wasm.component.layer.v0+wasm"),
);

const ARTIFACTS: &[Case<&'static TestImage>] = &[
    Case {
        name: "cncf_wasm_layer_artifact_runs",
        targets: wasm_shim_targets,
        input: &CNCF,
    },
    Case {
        name: "wkg_application_wasm_artifact_runs",
        targets: wasm_shim_targets,
        input: &WKG,
    },
    Case {
        name: "runwasi_component_layer_artifact_runs",
        targets: wasm_shim_targets,
        input: &RUNWASI,
    },
];

/// The path the shim gives a layer without a title: `/<its sha256>.wasm`.
fn module_path() -> Result<String> {
    let digest = Sha256::digest(std::fs::read(demo_module_path())?);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("/{hex}.wasm"))
}

/// containerd 1.6 cannot unpack such images: what it says instead (nothing reaches a shim).
fn containerd_before_1_7() -> bool {
    std::env::var("WASM_SHIMS_CONTAINERD_VERSION").is_ok_and(|v| v.starts_with("1.6."))
}

fn check(image: &&'static TestImage, target: &Target, test: &str) -> Result<()> {
    let container = |label: &str| Container::new(&format!("{test}-{label}"), target.runtime, image);
    if containerd_before_1_7() {
        let error = match image.ensure_imported() {
            Ok(()) => bail!("containerd 1.6 imported and unpacked {}", image.reference),
            Err(e) => format!("{e:#}"),
        };
        if !error.contains("mismatched image rootfs and manifest layers") {
            bail!(
                "containerd 1.6 refused {} otherwise: {error}",
                image.reference
            );
        }
        return Ok(());
    }
    // Without args: the image's only module runs.
    container("only")
        .run(&[])?
        .expect(0, "hello from wasi-demo-app\n")?;
    // With args: the module is in the rootfs at the path of its digest.
    container("args")
        .run(&[&module_path()?, "echo", "from", "an", "artifact"])?
        .expect(0, "from an artifact\n")
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn wasm_layers_are_read_from_the_content_store() {
    check_cases(ARTIFACTS, check);
}
