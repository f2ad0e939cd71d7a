//! The engine of `containerd-shim-spin-v2`: the wasmtime shim's engine, running the
//! application in `/spin.toml` (whatever the container's args say: SpinKube's command is `/`)
//! and, for `exec`, whatever module the args name.

use std::path::Path;

use containerd_shim_wasm::{Capabilities, Engine, EngineConfig, WasiContext};
use containerd_shim_wasmtime::engine::{LinkedWasm, WasmtimeEngine};

use crate::{app, componentize, host, trigger};

/// The place of the manifest in the container (containerd-shim-spin's).
pub const SPIN_MANIFEST: &str = "/spin.toml";

#[derive(Clone)]
pub struct SpinEngine {
    wasmtime: WasmtimeEngine,
}

/// What a process of a Spin container runs.
pub enum SpinModule {
    /// The container's application, served by its HTTP trigger.
    App(app::App),
    /// One module or component: a component of the application while it loads, or what an
    /// exec process runs.
    Wasm(LinkedWasm),
}

impl Engine for SpinEngine {
    const NAME: &'static str = "spin";
    const SHIM_VERSION: &'static str = "v2";
    const APPLICATION_FILE: Option<&'static str> = Some(SPIN_MANIFEST);
    const APPLICATION_FALLBACK: Option<&'static str> = Some(crate::locked::LOCKED_APP);
    type Module = SpinModule;
    // Those of the wasmtime engine that serves the components; an app's outbound hosts are
    // its components' `allowed_outbound_hosts` (trigger.rs refuses the container's list).
    const CAPABILITIES: Capabilities = WasmtimeEngine::CAPABILITIES;

    fn new(config: &EngineConfig) -> anyhow::Result<Self> {
        Ok(Self {
            wasmtime: WasmtimeEngine::new(config)?.with_host_interfaces(host::add_to_linker),
        })
    }

    fn runs_components(&self) -> bool {
        true
    }

    fn compile(&self, bytes: &[u8], entry: &str) -> anyhow::Result<SpinModule> {
        let bytes = componentize::if_needed(bytes)?;
        Ok(SpinModule::Wasm(self.wasmtime.compile(&bytes, entry)?))
    }

    fn precompile_key(&self) -> Option<String> {
        let key = self.wasmtime.precompile_key()?;
        Some(format!("{key}-{}", componentize::ADAPTER))
    }

    fn precompile(&self, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.wasmtime.precompile(&componentize::if_needed(bytes)?)
    }

    fn load_precompiled(&self, artifact: &[u8], entry: &str) -> anyhow::Result<SpinModule> {
        Ok(SpinModule::Wasm(
            self.wasmtime.load_precompiled(artifact, entry)?,
        ))
    }

    fn load_precompiled_file(&self, artifact: &Path, entry: &str) -> anyhow::Result<SpinModule> {
        Ok(SpinModule::Wasm(
            self.wasmtime.load_precompiled_file(artifact, entry)?,
        ))
    }

    fn load_application(
        &self,
        rootfs: &Path,
        file: &Path,
        container: &str,
    ) -> anyhow::Result<SpinModule> {
        Ok(SpinModule::App(app::load(self, rootfs, file, container)?))
    }

    fn runs_to_completion(&self, module: &SpinModule) -> bool {
        match module {
            SpinModule::App(_) => false,
            SpinModule::Wasm(wasm) => self.wasmtime.runs_to_completion(wasm),
        }
    }

    fn run(&self, module: &SpinModule, ctx: &WasiContext) -> anyhow::Result<i32> {
        match module {
            SpinModule::App(app) => trigger::serve(app, ctx, self.wasmtime.config()),
            SpinModule::Wasm(wasm) => self.wasmtime.run(wasm, ctx),
        }
    }
}
