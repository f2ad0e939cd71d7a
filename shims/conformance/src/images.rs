//! Test images, imported into containerd once per test binary.
//!
//! The demo images come from `scripts/build-test-images.sh`; the bad-input image is built
//! here with the image-builder library, since only the failure tests need it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use image_builder::{ImageBuilder, wat_module};

use crate::ctr::Ctr;

/// An image the tests run, and how to get it into containerd.
#[derive(Debug)]
pub struct TestImage {
    pub reference: &'static str,
    /// `os/arch`, passed to `ctr images import` and `ctr run`.
    pub platform: &'static str,
    source: Source,
    imported: OnceLock<Result<(), String>>,
}

#[derive(Debug)]
enum Source {
    /// A tarball in `<target>/test-images/`, written by scripts/build-test-images.sh.
    Tarball(&'static str),
    /// Built in memory on first use.
    Built(fn() -> Result<ImageBuilder>),
}

/// The Wasm demo (`/wasi-demo-app.wasm`, platform `wasip1/wasm`).
pub static WASI_DEMO_APP: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app:latest",
    "wasip1/wasm",
    "wasi-demo-app.tar",
);

/// The same module under the older platform name `wasi/wasm32`.
pub static WASI_DEMO_APP_WASI: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app-wasi:latest",
    "wasi/wasm32",
    "wasi-demo-app-wasi.tar",
);

/// The native demo (`/native-demo`, a static ELF), same sub-commands as the Wasm demo.
pub static NATIVE_DEMO: TestImage = TestImage::tarball(
    "docker.io/library/native-demo:latest",
    "linux/amd64",
    "native-demo.tar",
);

/// The Wasm demo built for wasm32-wasip2: a `wasi:cli/run` component, same sub-commands.
pub static WASI_DEMO_APP_COMPONENT: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app-component:latest",
    "wasip2/wasm",
    "wasi-demo-app-component.tar",
);

/// `/http-hello.wasm`, a `wasi:http/proxy` component (test-images/http-hello).
pub static HTTP_HELLO: TestImage = TestImage::tarball(
    "docker.io/library/http-hello:latest",
    "wasip2/wasm",
    "http-hello.tar",
);

/// `/auth-gateway.wasm`, a `wasi:http/proxy` component that checks a JWT and proxies
/// (test-images/auth-gateway).
pub static AUTH_GATEWAY: TestImage = TestImage::tarball(
    "docker.io/library/auth-gateway:latest",
    "wasip2/wasm",
    "auth-gateway.tar",
);

/// Files that no shim can run, in an image with neither entrypoint nor command.
pub static BAD_INPUTS: TestImage = TestImage::built(
    "docker.io/library/shim-conformance-bad-inputs:latest",
    "wasip1/wasm",
    bad_inputs_image,
);

/// Paths inside [`BAD_INPUTS`].
pub mod bad {
    /// A text file with the executable bit set.
    pub const TEXT_FILE: &str = "/not-a-module.txt";
    /// The Wasm magic number followed by garbage.
    pub const INVALID_MODULE: &str = "/invalid.wasm";
    /// A valid module that imports a function no engine provides.
    pub const UNRESOLVED_IMPORT: &str = "/unresolved-import.wasm";
    /// The name of that import (module `env`).
    pub const MISSING_IMPORT: &str = "no_engine_provides_this";
    /// Not in the image at all.
    pub const MISSING_MODULE: &str = "/no-such-module.wasm";
}

fn bad_inputs_image() -> Result<ImageBuilder> {
    let unresolved = wat_module(&format!(
        r#"(module
             (import "env" "{}" (func $missing))
             (func (export "_start") call $missing))"#,
        bad::MISSING_IMPORT
    ))?;
    let mut invalid = b"\0asm\x01\0\0\0".to_vec();
    invalid.extend_from_slice(b"this is not a WebAssembly section");
    Ok(ImageBuilder::new(BAD_INPUTS.reference)
        .platform("wasip1", "wasm")
        .file(bad::TEXT_FILE, "just some text\n", 0o755)
        .file(bad::INVALID_MODULE, invalid, 0o755)
        .file(bad::UNRESOLVED_IMPORT, unresolved, 0o755))
}

impl TestImage {
    /// An image that `build` makes in memory the first time a test needs it.
    pub const fn built(
        reference: &'static str,
        platform: &'static str,
        build: fn() -> Result<ImageBuilder>,
    ) -> Self {
        Self {
            reference,
            platform,
            source: Source::Built(build),
            imported: OnceLock::new(),
        }
    }

    const fn tarball(reference: &'static str, platform: &'static str, file: &'static str) -> Self {
        Self {
            reference,
            platform,
            source: Source::Tarball(file),
            imported: OnceLock::new(),
        }
    }

    /// Imports the image unless this test binary already did.
    pub fn ensure_imported(&self) -> Result<()> {
        self.imported
            .get_or_init(|| self.import().map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow!(e))
    }

    fn import(&self) -> Result<()> {
        let tar = match &self.source {
            Source::Tarball(file) => {
                let path = test_images_dir().join(file);
                std::fs::read(&path).with_context(|| {
                    format!(
                        "cannot read test image {}: run scripts/build-test-images.sh (`make test` does)",
                        path.display()
                    )
                })?
            }
            Source::Built(build) => build()?
                .build()
                .and_then(|archive| archive.to_tar())
                .with_context(|| format!("cannot build test image {}", self.reference))?,
        };
        // `-` reads the tarball from stdin; --platform unpacks it for that platform.
        Ctr::new(["images", "import", "--platform", self.platform, "-"])
            .stdin(tar)
            .timeout(Duration::from_secs(120))
            .output()?
            .success()
            .with_context(|| format!("cannot import {}", self.reference))?;
        Ok(())
    }
}

/// `<repo>/target/test-images`, where scripts/build-test-images.sh writes the tarballs
/// (there even when CARGO_TARGET_DIR points elsewhere).
fn test_images_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-images"
    ))
}
