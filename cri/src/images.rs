//! The images pods run, imported into containerd's `k8s.io` namespace (where the CRI plugin
//! looks) once per test binary. Nothing is pulled: containerd 1.6's PullImage always asks a
//! registry, so the tests import the tarballs of scripts/build-test-images.sh and use their
//! references, which CRI then finds locally.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use shim_conformance::ctr::Ctr;

/// The containerd namespace of the CRI plugin.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// An image tarball from `<repo>/target/test-images/`.
#[derive(Debug)]
pub struct Image {
    pub reference: &'static str,
    /// Passed to `ctr images import --platform`, which unpacks the layers for it.
    platform: &'static str,
    tarball: &'static str,
    imported: OnceLock<Result<(), String>>,
}

/// The Wasm demo, `/wasi-demo-app.wasm` (platform wasip1/wasm).
pub static WASI_DEMO_APP: Image = Image::new(
    "docker.io/library/wasi-demo-app:latest",
    "wasip1/wasm",
    "wasi-demo-app.tar",
);

/// The native demo, `/native-demo` (static, linux/amd64): the sidecar.
pub static NATIVE_DEMO: Image = Image::new(
    "docker.io/library/native-demo:latest",
    "linux/amd64",
    "native-demo.tar",
);

/// A wasm32-wasip2 component listening on TCP (`/tcp-echo.wasm PORT`).
pub static TCP_ECHO: Image = Image::new(
    "docker.io/library/tcp-echo:latest",
    "wasip2/wasm",
    "tcp-echo.tar",
);

/// The same listener as a static native program, for the sidecar.
pub static TCP_ECHO_NATIVE: Image = Image::new(
    "docker.io/library/tcp-echo-native:latest",
    "linux/amd64",
    "tcp-echo-native.tar",
);

/// The pause program, the CRI plugin's `sandbox_image` (scripts/containerd.sh).
pub static PAUSE: Image = Image::new(
    "docker.io/library/wasm-shims-pause:latest",
    "linux/amd64",
    "pause.tar",
);

impl Image {
    const fn new(reference: &'static str, platform: &'static str, tarball: &'static str) -> Self {
        Self {
            reference,
            platform,
            tarball,
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
        let path = test_images_dir().join(self.tarball);
        let tar = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read test image {}: run scripts/build-test-images.sh (`make test` does)",
                path.display()
            )
        })?;
        Ctr::new(["images", "import", "--platform", self.platform, "-"])
            .namespace(CRI_NAMESPACE)
            .stdin(tar)
            .timeout(Duration::from_secs(120))
            .output()?
            .success()
            .with_context(|| format!("cannot import {} into {CRI_NAMESPACE}", self.reference))?;
        Ok(())
    }
}

/// `<repo>/target/test-images`, where scripts/build-test-images.sh writes the tarballs
/// (there even when CARGO_TARGET_DIR points elsewhere).
fn test_images_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/test-images"
    ))
}
