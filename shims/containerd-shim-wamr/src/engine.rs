//! Runs WASI preview 1 modules with WAMR's fast interpreter.

use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, bail};
use containerd_shim_wasm::{Capabilities, Engine, EngineConfig, Preopen, Sockets, WasiContext};
use wasmparser::{Parser, Payload, TypeRef};

use crate::wamr::{Ending, Kind, Module, Runtime, WasiArgs};

/// The interpreter's stack for the entry point's call (frames and operands, not the
/// module's own shadow stack, which lives in its linear memory).
const WASM_STACK_SIZE: u32 = 1024 * 1024;

/// WAMR's runtime, initialized once per process; cloning shares it.
#[derive(Clone)]
pub struct WamrEngine {
    runtime: Runtime,
}

impl Engine for WamrEngine {
    const NAME: &'static str = "wamr";
    // WAMR's WASI has no read-only preopen (see `map_dir`).
    const READ_ONLY_PREOPENS: bool = false;
    // Memories capped through the instantiation arguments; the deadline is the library's;
    // WAMR's tables have no cap, and its WASI no socket functions as this crate builds it.
    const CAPABILITIES: Capabilities = Capabilities {
        max_memory: true,
        max_table_elements: false,
        deadline: true,
        request_deadline: false,
        sockets: Sockets::NoSockets,
    };
    type Module = Module;

    fn new(config: &EngineConfig) -> anyhow::Result<Self> {
        config.refuse_all(Self::NAME)?;
        Ok(Self {
            runtime: Runtime::get()?,
        })
    }

    fn compile(&self, bytes: &[u8], entry: &str) -> anyhow::Result<Module> {
        // WAMR's loader checks WASI's ABI first (a `_start` module must export its memory),
        // so the imports it has nothing for, what the user must fix, are looked for before.
        refuse_imports(imports_without_host_function(self.runtime, bytes))?;
        let module = self.runtime.load(bytes)?;
        // WAMR loads a module whose imports it cannot link (a WASI function with another
        // type) and traps only when one is called; refuse it, as other engines do.
        refuse_imports(
            module
                .imports()
                .into_iter()
                .filter(|import| !import.linked)
                .map(|import| {
                    let kind = format!("{:?}", import.kind).to_lowercase();
                    format!("`{}::{}` ({kind})", import.module, import.name)
                })
                .collect(),
        )?;
        let exports = module.exports();
        match exports.iter().find(|export| export.name == entry) {
            Some(export) if export.kind != Kind::Function => {
                bail!("export `{entry}` is not a function")
            }
            Some(export) if export.params_and_results != Some((0, 0)) => {
                bail!("exported function `{entry}` must take no parameters and return nothing")
            }
            Some(_) => Ok(module),
            None => bail!("the module has no exported function `{entry}`"),
        }
    }

    fn run(&self, module: &Module, ctx: &WasiContext) -> anyhow::Result<i32> {
        let wasi = WasiArgs::new(
            ctx.args
                .iter()
                .map(|arg| arg.clone().into_bytes())
                .collect(),
            ctx.env
                .iter()
                .map(|(name, value)| format!("{name}={value}").into_bytes())
                .collect(),
            ctx.preopens
                .iter()
                .map(map_dir)
                .collect::<anyhow::Result<_>>()?,
        )?;
        let max_memory_pages = ctx.settings.max_memory.map(memory_pages);
        let instance = module
            .instantiate(&wasi, max_memory_pages)
            .context("instantiate")?;
        let ending = instance
            .call(&ctx.entry, WASM_STACK_SIZE)
            .with_context(|| format!("entry point `{}`", ctx.entry))?;
        Ok(match ending {
            Ending::Returned => 0,
            // WASI exit codes are unsigned; the process keeps the low byte either way.
            Ending::Exited(code) => code as i32,
        })
    }
}

/// The 64 KiB pages that hold `bytes`, rounded up (at most the 4 GiB of a 32-bit memory).
fn memory_pages(bytes: u64) -> u32 {
    const PAGE: u64 = 64 * 1024;
    u32::try_from(bytes.div_ceil(PAGE).min(1 << 16)).unwrap_or(1 << 16)
}

/// The imports of `bytes` that are not a host function of WAMR's, as `module::name (kind)`.
/// Bytes that do not parse are left to WAMR's loader, which names the problem.
fn imports_without_host_function(runtime: Runtime, bytes: &[u8]) -> Vec<String> {
    let section = Parser::new(0)
        .parse_all(bytes)
        .map_while(Result::ok)
        .find_map(|payload| match payload {
            Payload::ImportSection(section) => Some(section),
            _ => None,
        });
    let Some(section) = section else {
        return vec![];
    };
    section
        .into_imports()
        .map_while(Result::ok)
        .filter(|import| {
            !matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_))
                || !runtime.has_host_function(import.module, import.name)
        })
        .map(|import| {
            let kind = match import.ty {
                TypeRef::Func(_) | TypeRef::FuncExact(_) => "function",
                TypeRef::Table(_) => "table",
                TypeRef::Memory(_) => "memory",
                TypeRef::Global(_) => "global",
                TypeRef::Tag(_) => "tag",
            };
            format!("`{}::{}` ({kind})", import.module, import.name)
        })
        .collect()
}

fn refuse_imports(unknown: Vec<String>) -> anyhow::Result<()> {
    if unknown.is_empty() {
        return Ok(());
    }
    bail!(
        "unknown import{}: {} (the wamr engine provides WASI preview 1 functions only, with their WASI types)",
        if unknown.len() > 1 { "s" } else { "" },
        unknown.join(", ")
    )
}

/// WAMR's `guest::host` spelling of a preopened directory.
///
/// WAMR's WASI has no read-only preopen (every directory grants the rights to create and
/// write files), so `read_only` cannot be honoured here. The rootfs of a read-only
/// container is still protected: `libcontainer` mounts it read-only, and the kernel
/// refuses the writes (EROFS) that wasmtime would refuse in WASI. A read-only preopen of
/// a writable directory is refused at create (`READ_ONLY_PREOPENS`).
fn map_dir(dir: &Preopen) -> anyhow::Result<Vec<u8>> {
    if dir.guest_path.contains("::") {
        bail!(
            "cannot preopen {} as {:?}: WAMR splits preopens at `::`",
            dir.host_path.display(),
            dir.guest_path
        );
    }
    Ok([
        dir.guest_path.as_bytes(),
        b"::",
        dir.host_path.as_os_str().as_bytes(),
    ]
    .concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    /// Why compiling the text-format module `text` for `entry` fails.
    fn compile_error(text: &str, entry: &str) -> String {
        let engine = WamrEngine::new(&EngineConfig::default()).unwrap();
        match engine.compile(&wat(text), entry) {
            Ok(_) => panic!("compiled for `{entry}`: {text}"),
            Err(e) => format!("{e:#}"),
        }
    }

    /// Runs `_start` of a module made of `funcs`, which may call `$exit` (WASI's proc_exit).
    fn run_start(funcs: &str) -> anyhow::Result<i32> {
        let engine = WamrEngine::new(&EngineConfig::default()).unwrap();
        let text = format!(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1) {funcs})"#
        );
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
        engine.run(&engine.compile(&wat(&text), "_start")?, &ctx)
    }

    #[test]
    fn compile_checks_the_entry_and_the_imports() {
        // WAMR requires a module that exports `_start` to export its memory (WASI's rule).
        let ok = r#"(module (memory (export "memory") 1) (func (export "_start"))
            (func (export "greet")) (func (export "add") (param i32)))"#;
        let engine = WamrEngine::new(&EngineConfig::default()).unwrap();
        engine.compile(&wat(ok), "_start").unwrap();
        engine.compile(&wat(ok), "greet").unwrap();
        let err = compile_error(ok, "missing");
        assert!(err.contains("no exported function `missing`"), "{err}");
        let err = compile_error(ok, "add");
        assert!(err.contains("no parameters"), "{err}");

        // Named although WAMR's loader would first refuse the memory that is not exported.
        let err = compile_error(
            r#"(module (import "env" "nope" (func)) (import "env" "memory" (memory 1))
                (func (export "_start")))"#,
            "_start",
        );
        assert!(err.contains("`env::nope` (function)"), "{err}");
        assert!(err.contains("`env::memory` (memory)"), "{err}");
        // A WASI function with another type is not WASI's.
        let err = compile_error(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i64)))
                (memory (export "memory") 1) (func (export "_start")))"#,
            "_start",
        );
        assert!(err.contains("`wasi_snapshot_preview1::proc_exit`"), "{err}");

        let err = engine
            .compile(b"\0asm\x01\0\0\0garbage", "_start")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("section"), "{err:#}");
    }

    #[test]
    fn exit_codes_and_traps() {
        let exits = run_start(r#"(func (export "_start") (call $exit (i32.const 42)))"#);
        assert_eq!(exits.unwrap(), 42);
        assert_eq!(run_start(r#"(func (export "_start"))"#).unwrap(), 0);
        let trap = run_start(r#"(func (export "_start") unreachable)"#).unwrap_err();
        assert!(format!("{trap:#}").contains("unreachable"), "{trap:#}");
        // Unbounded recursion ends in a trap, not in a crash of the process.
        let overflow = run_start(r#"(func $f (export "_start") call $f)"#).unwrap_err();
        assert!(
            format!("{overflow:#}").contains("stack overflow"),
            "{overflow:#}"
        );
    }
}
