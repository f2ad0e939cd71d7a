//! Runs WASI preview 1 modules and WASI 0.2 and 0.3 components (`wasi:cli/run` commands,
//! `wasi:http/proxy` and `wasi:http/service` servers) with wasmtime.

use std::hash::{Hash, Hasher};
use std::path::Path;

use anyhow::bail;
use containerd_shim_wasm::{Capabilities, Engine, EngineConfig, Sockets, WasiContext};
use wasmtime::component::Component;
use wasmtime::{Config, Module, OptLevel, Precompiled};

use crate::component::{self, LinkedCommand, World};
use crate::http::{self, HttpComponent};
use crate::p1::{self, LinkedModule};

/// The wasmtime release this shim is built on (kept in step with Cargo.toml).
pub const WASMTIME_VERSION: &str = "48";

/// One wasmtime engine; cloning shares it.
#[derive(Clone)]
pub struct WasmtimeEngine {
    engine: wasmtime::Engine,
    /// The runtime options it was built with, for the serving engine of HTTP servers.
    config: EngineConfig,
    /// An embedder's host interfaces for HTTP servers (the Spin shim's `fermyon:spin/*`).
    host_interfaces: Option<http::AddHostInterfaces>,
}

/// What the container runs, compiled and linked.
pub enum LinkedWasm {
    /// A core module (WASI preview 1), called through its entry export.
    Module(LinkedModule),
    /// A `wasi:cli/run` component, run once.
    Command(LinkedCommand),
    /// A `wasi:http/proxy` or `wasi:http/service` component, served over HTTP.
    HttpServer(HttpComponent),
}

/// The settings every engine of this shim shares, so that code compiled by one loads in
/// another (the HTTP server's engine adds only the pooling allocator, which compiled code
/// does not depend on): the runtime options' features and optimisation level, and epoch
/// interruption for request deadlines (`limits`).
pub fn base_config(options: &EngineConfig) -> anyhow::Result<Config> {
    let mut config = Config::new();
    // Compilation runs in the create helper, which must stay single-threaded because
    // libcontainer forks it right after.
    config.parallel_compilation(false);
    // WASI 0.3: the component model's async ABI (async exports, `stream`, `future`), with
    // the builtins and stackful tasks toolchains emit (componentize-py's) and error contexts.
    config
        .wasm_component_model_async(true)
        .wasm_component_model_more_async_builtins(true)
        .wasm_component_model_async_stackful(true)
        .wasm_component_model_error_context(true);
    config.epoch_interruption(true);
    // A trap carries a core dump of the store, written only when the container asks for it
    // (`debugging::coredump`); capturing one takes handles, it copies no memory.
    config.coredump_on_trap(true);
    // A trap's backtrace gives the file and line of each frame when the module carries DWARF
    // (a debug build, or Rust's `debug = "line-tables-only"`), not only the function name.
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
    for (feature, on) in &options.wasm_features {
        let Some((_, set)) = FEATURES.iter().find(|(name, _)| name == feature) else {
            let names: Vec<&str> = FEATURES.iter().map(|(name, _)| *name).collect();
            bail!(
                "the runtime option WasmFeatures: unknown proposal {feature:?}; the wasmtime \
                 engine knows {}",
                names.join(", ")
            );
        };
        set(&mut config, *on);
    }
    if let Some(level) = &options.opt_level {
        config.cranelift_opt_level(match level.as_str() {
            "none" => OptLevel::None,
            "speed" => OptLevel::Speed,
            "speed_and_size" => OptLevel::SpeedAndSize,
            other => {
                bail!("the runtime option OptLevel = {other:?}: none, speed or speed_and_size")
            }
        });
    }
    Ok(config)
}

/// The proposals `WasmFeatures` switches, by the names wasmtime's `-W` flags use.
type SetFeature = fn(&mut Config, bool) -> &mut Config;
const FEATURES: [(&str, SetFeature); 15] = [
    ("bulk_memory", Config::wasm_bulk_memory),
    ("component_model_async", Config::wasm_component_model_async),
    ("exceptions", Config::wasm_exceptions),
    ("extended_const", Config::wasm_extended_const),
    ("function_references", Config::wasm_function_references),
    ("gc", Config::wasm_gc),
    ("memory64", Config::wasm_memory64),
    ("multi_memory", Config::wasm_multi_memory),
    ("multi_value", Config::wasm_multi_value),
    ("reference_types", Config::wasm_reference_types),
    ("relaxed_simd", Config::wasm_relaxed_simd),
    ("simd", Config::wasm_simd),
    ("tail_call", Config::wasm_tail_call),
    ("threads", Config::wasm_threads),
    ("wide_arithmetic", Config::wasm_wide_arithmetic),
];

impl Engine for WasmtimeEngine {
    const NAME: &'static str = "wasmtime";
    type Module = LinkedWasm;

    const CAPABILITIES: Capabilities = Capabilities {
        max_memory: true,
        max_table_elements: true,
        deadline: true,
        request_deadline: true,
        sockets: Sockets::ByHost,
    };

    fn new(config: &EngineConfig) -> anyhow::Result<Self> {
        let engine = wasmtime::Engine::new(&base_config(config)?)?;
        Ok(Self {
            engine,
            config: config.clone(),
            host_interfaces: None,
        })
    }

    fn runs_to_completion(&self, module: &LinkedWasm) -> bool {
        !matches!(module, LinkedWasm::HttpServer(_))
    }

    fn runs_components(&self) -> bool {
        true
    }

    fn compile(&self, bytes: &[u8], entry: &str) -> anyhow::Result<LinkedWasm> {
        if wasmparser::Parser::is_component(bytes) {
            self.link_component(Component::new(&self.engine, bytes)?, entry)
        } else {
            self.link_module(Module::new(&self.engine, bytes)?, entry)
        }
    }

    fn precompile_key(&self) -> Option<String> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(format!("{WASMTIME_VERSION}-{:016x}", hasher.finish()))
    }

    fn precompile(&self, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        if wasmparser::Parser::is_component(bytes) {
            Ok(self.engine.precompile_component(bytes)?)
        } else {
            Ok(self.engine.precompile_module(bytes)?)
        }
    }

    fn load_precompiled(&self, artifact: &[u8], entry: &str) -> anyhow::Result<LinkedWasm> {
        // SAFETY (both arms): the artifact comes from `precompile` of this engine build,
        // through the library's root-owned cache, which verified its checksum; wasmtime itself
        // rejects artifacts of another version or configuration, and of the other kind (a
        // module artifact never deserializes as a component, nor the reverse).
        match wasmtime::Engine::detect_precompiled(artifact) {
            Some(Precompiled::Module) => {
                let module = unsafe { Module::deserialize(&self.engine, artifact) }?;
                self.link_module(module, entry)
            }
            Some(Precompiled::Component) => {
                let component = unsafe { Component::deserialize(&self.engine, artifact) }?;
                self.link_component(component, entry)
            }
            None => bail!("not a precompiled wasmtime module or component"),
        }
    }

    fn load_precompiled_file(&self, artifact: &Path, entry: &str) -> anyhow::Result<LinkedWasm> {
        // SAFETY (both arms): as in `load_precompiled`; wasmtime maps the file, which the
        // cache never changes in place (a rebuilt entry is a new file renamed over it).
        match wasmtime::Engine::detect_precompiled_file(artifact)? {
            Some(Precompiled::Module) => {
                let module = unsafe { Module::deserialize_file(&self.engine, artifact) }?;
                self.link_module(module, entry)
            }
            Some(Precompiled::Component) => {
                let component = unsafe { Component::deserialize_file(&self.engine, artifact) }?;
                self.link_component(component, entry)
            }
            None => bail!(
                "{}: not a precompiled wasmtime module or component",
                artifact.display()
            ),
        }
    }

    fn run(&self, module: &LinkedWasm, ctx: &WasiContext) -> anyhow::Result<i32> {
        match module {
            LinkedWasm::Module(module) => p1::run(&self.engine, module, ctx),
            LinkedWasm::Command(command) => component::run_command(&self.engine, command, ctx),
            LinkedWasm::HttpServer(server) => http::serve(server, ctx, &self.config),
        }
    }
}

impl WasmtimeEngine {
    /// This engine, linking HTTP servers with `add`'s host interfaces besides WASI: servers
    /// importing them link (at create), and their instances get them.
    pub fn with_host_interfaces(self, add: http::AddHostInterfaces) -> Self {
        Self {
            host_interfaces: Some(add),
            ..self
        }
    }

    /// The runtime options the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn link_module(&self, module: Module, entry: &str) -> anyhow::Result<LinkedWasm> {
        Ok(LinkedWasm::Module(p1::link(&self.engine, module, entry)?))
    }

    fn link_component(&self, component: Component, entry: &str) -> anyhow::Result<LinkedWasm> {
        component::check_entry(entry)?;
        Ok(match component::world(&self.engine, &component)? {
            World::Command(wasi) => {
                LinkedWasm::Command(component::link_command(&self.engine, &component, wasi)?)
            }
            World::HttpServer(wasi) => LinkedWasm::HttpServer(http::link(
                &self.engine,
                component,
                wasi,
                self.host_interfaces,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Wasi;

    fn wat(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn compile_checks_the_entry_and_the_imports() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let ok = wat(r#"(module (func (export "_start")) (func (export "greet")))"#);
        engine.compile(&ok, "_start").unwrap();
        engine.compile(&ok, "greet").unwrap();
        let err = engine.compile(&ok, "missing").err().unwrap();
        assert!(
            err.to_string().contains("no exported function `missing`"),
            "{err}"
        );

        let unknown = wat(r#"(module (import "env" "nope" (func)) (func (export "_start")))"#);
        let err = engine.compile(&unknown, "_start").err().unwrap();
        assert!(format!("{err:#}").contains("env::nope"), "{err:#}");

        let err = engine
            .compile(b"\0asm\x01\0\0\0garbage", "_start")
            .err()
            .unwrap();
        assert!(!format!("{err:#}").is_empty());
    }

    #[test]
    fn precompiled_artifacts_load_and_foreign_bytes_are_refused() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let bytes = wat(r#"(module (func (export "_start")))"#);
        let artifact = engine.precompile(&bytes).unwrap();
        engine.load_precompiled(&artifact, "_start").unwrap();
        let err = engine.load_precompiled(&artifact, "greet").err().unwrap();
        assert!(
            err.to_string().contains("no exported function `greet`"),
            "{err}"
        );
        assert!(
            engine
                .load_precompiled(b"not an artifact", "_start")
                .is_err()
        );
        let key = engine.precompile_key().unwrap();
        assert_eq!(
            Some(key),
            WasmtimeEngine::new(&EngineConfig::default())
                .unwrap()
                .precompile_key(),
            "stable key"
        );
    }

    #[test]
    fn exit_codes_and_traps() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let ctx = WasiContext {
            args: vec!["m.wasm".into()],
            env: vec![],
            preopens: vec![],
            entry: "_start".into(),
            network: false,
            container: "test".into(),
            settings: Default::default(),
            annotations: Default::default(),
        };
        let exits = wat(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1)
                (func (export "_start") (call $exit (i32.const 42))))"#,
        );
        assert_eq!(
            engine
                .run(&engine.compile(&exits, "_start").unwrap(), &ctx)
                .unwrap(),
            42
        );
        let returns = wat(r#"(module (memory (export "memory") 1) (func (export "_start")))"#);
        assert_eq!(
            engine
                .run(&engine.compile(&returns, "_start").unwrap(), &ctx)
                .unwrap(),
            0
        );
        let traps =
            wat(r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#);
        let err = engine
            .run(&engine.compile(&traps, "_start").unwrap(), &ctx)
            .unwrap_err();
        assert!(format!("{err:?}").contains("unreachable"), "{err:?}");
    }

    /// A `wasi:cli/run` component whose `run` returns ok (`status` 0) or err (1).
    fn command_component(status: i32) -> Vec<u8> {
        wat(&format!(
            r#"(component
                 (core module $m (func (export "run") (result i32) (i32.const {status})))
                 (core instance $i (instantiate $m))
                 (func $run (result (result)) (canon lift (core func $i "run")))
                 (instance $cli (export "run" (func $run)))
                 (export "wasi:cli/run@0.2.0" (instance $cli)))"#
        ))
    }

    fn context() -> WasiContext {
        WasiContext {
            args: vec!["c.wasm".into()],
            env: vec![],
            preopens: vec![],
            entry: "_start".into(),
            network: false,
            container: "test".into(),
            settings: Default::default(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn command_components_are_recognised_and_run() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        for (status, exit) in [(0, 0), (1, 1)] {
            let command = engine
                .compile(&command_component(status), "_start")
                .unwrap();
            assert!(matches!(command, LinkedWasm::Command(_)));
            assert_eq!(engine.run(&command, &context()).unwrap(), exit);
        }
    }

    #[test]
    fn components_of_no_known_world_or_with_an_entry_are_refused() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let err = engine.compile(&wat("(component)"), "_start").err().unwrap();
        assert!(
            err.to_string().contains("none of wasi:cli/run@0.2"),
            "{err}"
        );
        let err = engine
            .compile(&command_component(0), "greet")
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("only applies to core modules"),
            "{err}"
        );
    }

    #[test]
    fn module_and_component_artifacts_never_load_as_each_other() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let module = engine
            .precompile(&wat(r#"(module (func (export "_start")))"#))
            .unwrap();
        let component = engine.precompile(&command_component(0)).unwrap();
        assert!(matches!(
            engine.load_precompiled(&module, "_start").unwrap(),
            LinkedWasm::Module(_)
        ));
        assert!(matches!(
            engine.load_precompiled(&component, "_start").unwrap(),
            LinkedWasm::Command(_)
        ));
        // Below the kind detection, wasmtime itself refuses the other kind.
        // SAFETY: both artifacts were made by this engine just now.
        assert!(unsafe { Component::deserialize(&engine.engine, &module) }.is_err());
        assert!(unsafe { Module::deserialize(&engine.engine, &component) }.is_err());
    }

    /// A component exporting one instance `name` holding a function `f`.
    fn exporting(name: &str) -> Vec<u8> {
        wat(&format!(
            r#"(component
                 (core module $m (func (export "f")))
                 (core instance $i (instantiate $m))
                 (func $f (canon lift (core func $i "f")))
                 (instance $e (export "f" (func $f)))
                 (export "{name}" (instance $e)))"#
        ))
    }

    #[test]
    fn worlds_are_told_by_their_exports_at_any_patch_version() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        for (export, expected) in [
            ("wasi:cli/run@0.2.0", World::Command(Wasi::P2)),
            ("wasi:cli/run@0.2.12", World::Command(Wasi::P2)),
            ("wasi:cli/run@0.3.0", World::Command(Wasi::P3)),
            ("wasi:cli/run@0.3.2", World::Command(Wasi::P3)),
            (
                "wasi:http/incoming-handler@0.2.9",
                World::HttpServer(Wasi::P2),
            ),
            ("wasi:http/handler@0.3.0", World::HttpServer(Wasi::P3)),
        ] {
            let component = Component::new(&engine.engine, exporting(export)).unwrap();
            assert_eq!(
                component::world(&engine.engine, &component).unwrap(),
                expected,
                "{export}"
            );
        }
        let component = Component::new(&engine.engine, exporting("wasi:cli/run@0.4.0")).unwrap();
        let err = component::world(&engine.engine, &component).unwrap_err();
        assert!(err.to_string().contains("wasi:cli/run@0.4.0"), "{err}");
    }

    #[test]
    fn a_missing_import_is_named_with_what_the_shim_offers() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let component = wat(r#"(component
              (import "wasi:nonexistent/thing@1.0.0" (instance (export "f" (func))))
              (core module $m (func (export "run") (result i32) (i32.const 0)))
              (core instance $i (instantiate $m))
              (func $run (result (result)) (canon lift (core func $i "run")))
              (instance $cli (export "run" (func $run)))
              (export "wasi:cli/run@0.2.0" (instance $cli)))"#);
        let err = format!("{:#}", engine.compile(&component, "_start").err().unwrap());
        assert!(err.contains("wasi:nonexistent/thing@1.0.0"), "{err}");
        assert!(err.contains("offers WASI 0.2.x and 0.3.x"), "{err}");
    }

    #[test]
    fn runtime_options_switch_proposals_and_bad_ones_are_named() {
        let tail_call =
            wat(r#"(module (func $f return_call $f) (func (export "_start") (call $f)))"#);
        let default = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        default.compile(&tail_call, "_start").unwrap();
        let options = EngineConfig {
            wasm_features: [("tail_call".to_string(), false)].into(),
            opt_level: Some("none".into()),
            ..EngineConfig::default()
        };
        let without = WasmtimeEngine::new(&options).unwrap();
        let error = format!("{:#}", without.compile(&tail_call, "_start").err().unwrap());
        assert!(error.contains("tail call"), "{error}");
        assert_ne!(default.precompile_key(), without.precompile_key());

        let unknown = EngineConfig {
            wasm_features: [("teleportation".to_string(), true)].into(),
            ..EngineConfig::default()
        };
        let error = WasmtimeEngine::new(&unknown).err().unwrap().to_string();
        assert!(
            error.contains("WasmFeatures") && error.contains("teleportation"),
            "{error}"
        );
    }

    #[test]
    fn a_memory_cap_fails_growth_inside_the_sandbox() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        // Exits with 0 when growing by 32 pages (2 MiB) fails, 1 when it succeeds.
        let grows = wat(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1)
                (func (export "_start")
                  (call $exit (i32.ne (memory.grow (i32.const 32)) (i32.const -1)))))"#,
        );
        let module = engine.compile(&grows, "_start").unwrap();
        let mut ctx = context();
        assert_eq!(engine.run(&module, &ctx).unwrap(), 1);
        ctx.settings.max_memory = Some(1 << 20);
        assert_eq!(engine.run(&module, &ctx).unwrap(), 0);
    }
}
