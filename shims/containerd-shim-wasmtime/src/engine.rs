//! Runs WASI preview 1 modules with wasmtime.

use std::hash::{Hash, Hasher};

use anyhow::{Context, anyhow, bail};
use containerd_shim_wasm::{Engine, WasiContext};
use wasmtime::{Config, ExternType, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The wasmtime release this shim is built on (kept in step with Cargo.toml).
pub const WASMTIME_VERSION: &str = "48";

/// One wasmtime engine; cloning shares it.
#[derive(Clone)]
pub struct WasmtimeEngine {
    engine: wasmtime::Engine,
}

/// A module linked against WASI preview 1, ready to instantiate.
pub struct LinkedModule {
    pre: InstancePre<WasiP1Ctx>,
}

impl Engine for WasmtimeEngine {
    const NAME: &'static str = "wasmtime";
    type Module = LinkedModule;

    fn new() -> anyhow::Result<Self> {
        let mut config = Config::new();
        // Compilation runs in the create helper, which must stay single-threaded because
        // libcontainer forks it right after.
        config.parallel_compilation(false);
        let engine = wasmtime::Engine::new(&config)?;
        Ok(Self { engine })
    }

    fn compile(&self, bytes: &[u8], entry: &str) -> anyhow::Result<LinkedModule> {
        self.link(Module::new(&self.engine, bytes)?, entry)
    }

    fn precompile_key(&self) -> Option<String> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        Some(format!("{WASMTIME_VERSION}-{:016x}", hasher.finish()))
    }

    fn precompile(&self, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        Ok(self.engine.precompile_module(bytes)?)
    }

    fn load_precompiled(&self, artifact: &[u8], entry: &str) -> anyhow::Result<LinkedModule> {
        // SAFETY: the artifact comes from `precompile` of this engine build, through the
        // library's root-owned cache, which verified its checksum; wasmtime itself rejects
        // artifacts of another version or configuration.
        let module = unsafe { Module::deserialize(&self.engine, artifact) }?;
        self.link(module, entry)
    }

    fn run(&self, module: &LinkedModule, ctx: &WasiContext) -> anyhow::Result<i32> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdio().args(&ctx.args).envs(&ctx.env);
        for dir in &ctx.preopens {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&dir.host_path, &dir.guest_path, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("preopen {} as {}", dir.host_path.display(), dir.guest_path)
                })?;
        }
        let mut store = Store::new(&self.engine, wasi.build_p1());
        let instance = module
            .pre
            .instantiate(&mut store)
            .map_err(anyhow::Error::from)
            .context("instantiate")?;
        let func = instance
            .get_typed_func::<(), ()>(&mut store, &ctx.entry)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("entry point `{}`", ctx.entry))?;
        match func.call(&mut store, ()) {
            Ok(()) => Ok(0),
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(anyhow!(e)),
            },
        }
    }
}

impl WasmtimeEngine {
    /// Checks the entry export and links WASI preview 1.
    fn link(&self, module: Module, entry: &str) -> anyhow::Result<LinkedModule> {
        match module.get_export(entry) {
            Some(ExternType::Func(_)) => {}
            Some(_) => bail!("export `{entry}` is not a function"),
            None => bail!("the module has no exported function `{entry}`"),
        }
        let mut linker = Linker::new(&self.engine);
        p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
        let pre = linker.instantiate_pre(&module)?;
        Ok(LinkedModule { pre })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    #[test]
    fn compile_checks_the_entry_and_the_imports() {
        let engine = WasmtimeEngine::new().unwrap();
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
        let engine = WasmtimeEngine::new().unwrap();
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
            WasmtimeEngine::new().unwrap().precompile_key(),
            "stable key"
        );
    }

    #[test]
    fn exit_codes_and_traps() {
        let engine = WasmtimeEngine::new().unwrap();
        let ctx = WasiContext {
            args: vec!["m.wasm".into()],
            env: vec![],
            preopens: vec![],
            entry: "_start".into(),
            network: false,
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
}
