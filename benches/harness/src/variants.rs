//! What is compared: a runtime, the image it runs and the state of the precompile cache.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// An image in containerd and the program its containers run.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: String,
    /// `os/arch`, for `ctr run --platform`.
    pub platform: String,
    /// `process.args[0]`.
    pub program: String,
}

impl Image {
    /// The Wasm demo of scripts/build-test-images.sh.
    pub fn wasi_demo() -> Self {
        Self {
            reference: "docker.io/library/wasi-demo-app:latest".into(),
            platform: "wasip1/wasm".into(),
            program: "/wasi-demo-app.wasm".into(),
        }
    }

    /// The static native demo with the same sub-commands: what runc runs.
    pub fn native_demo() -> Self {
        Self {
            reference: "docker.io/library/native-demo:latest".into(),
            platform: "linux/amd64".into(),
            program: "/native-demo".into(),
        }
    }

    /// `process.args`: the program, then `command`.
    pub fn args(&self, command: &[&str]) -> Vec<String> {
        std::iter::once(self.program.clone())
            .chain(command.iter().map(|arg| arg.to_string()))
            .collect()
    }
}

/// The state of the shims' precompile cache during a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cache {
    /// Removed before each container (or made unusable while many start at once): every
    /// container compiles its module.
    Uncached,
    /// Filled by a warm-up container: every container loads the precompiled module.
    Cached,
    /// The runtime has no precompile cache (runc; WAMR interprets).
    None,
}

/// One runtime configuration that the measurements compare.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Stable name in the results, e.g. `wasmtime-cached`.
    pub key: &'static str,
    /// Name in the report.
    pub label: &'static str,
    /// containerd runtime name.
    pub runtime: &'static str,
    pub image: Image,
    pub cache: Cache,
}

pub const WASMTIME: &str = "io.containerd.wasmtime.v1";
pub const WAMR: &str = "io.containerd.wamr.v1";
pub const RUNC: &str = "io.containerd.runc.v2";
pub const WAMR_BINARY: &str = "containerd-shim-wamr-v1";

impl Variant {
    pub fn wasmtime_uncached(image: Image) -> Self {
        Self {
            key: "wasmtime-uncached",
            label: "wasmtime, uncached",
            runtime: WASMTIME,
            image,
            cache: Cache::Uncached,
        }
    }

    pub fn wasmtime_cached(image: Image) -> Self {
        Self {
            key: "wasmtime-cached",
            label: "wasmtime, cached",
            runtime: WASMTIME,
            image,
            cache: Cache::Cached,
        }
    }

    pub fn wamr(image: Image) -> Self {
        Self {
            key: "wamr",
            label: "WAMR",
            runtime: WAMR,
            image,
            cache: Cache::None,
        }
    }

    pub fn runc() -> Self {
        Self {
            key: "runc",
            label: "runc (native)",
            runtime: RUNC,
            image: Image::native_demo(),
            cache: Cache::None,
        }
    }
}

/// The engines the run covers: WAMR only when its shim is built.
#[derive(Debug, Clone, Copy)]
pub struct Engines {
    pub wamr: bool,
}

impl Engines {
    pub fn detect(shim_bin_dir: &Path) -> Self {
        Self {
            wamr: shim_bin_dir.join(WAMR_BINARY).is_file(),
        }
    }

    /// The four of the cold-start and throughput measurements (three without WAMR).
    pub fn demo_variants(self) -> Vec<Variant> {
        let mut variants = self.wasm_variants(&Image::wasi_demo());
        variants.push(Variant::runc());
        variants
    }

    /// The Wasm variants on `image`: wasmtime uncached and cached, and WAMR.
    pub fn wasm_variants(self, image: &Image) -> Vec<Variant> {
        let mut variants = vec![
            Variant::wasmtime_uncached(image.clone()),
            Variant::wasmtime_cached(image.clone()),
        ];
        if self.wamr {
            variants.push(Variant::wamr(image.clone()));
        }
        variants
    }
}
