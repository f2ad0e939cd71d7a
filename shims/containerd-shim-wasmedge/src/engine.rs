//! Runs WASI preview 1 modules with WasmEdge (through `wasmedge-sdk`, on the system's
//! libwasmedge).

use std::collections::HashMap;

use anyhow::{Context, bail};
use containerd_shim_wasm::{Capabilities, Engine, EngineConfig, Preopen, WasiContext};
use wasmedge_sdk::error::{CoreCommonError, CoreError, WasmEdgeError};
use wasmedge_sdk::wasi::WasiModule;
use wasmedge_sdk::{AsInstance, ExternalInstanceType, FuncType, Instance, LogManager, Module};
use wasmedge_sdk::{Store, Vm};
use wasmedge_sys::instance::function::AsFunc;

/// The module name WasmEdge registers its WASI preview 1 functions under.
const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The guest path of the working directory's preopen. wasi-libc resolves a path against the
/// preopen with the longest matching prefix, and "." and "/" both match every path; other
/// engines keep the preopens' order, where the later "." wins the tie, but WasmEdge sorts
/// them by address, so either would win at random. Without it, relative paths resolve from
/// "/" every time (docs/engines.md: not supported).
const CWD_PREOPEN: &str = ".";

/// WasmEdge with its default configuration (the WebAssembly 2.0 proposals on).
#[derive(Clone)]
pub struct WasmEdgeEngine;

impl Engine for WasmEdgeEngine {
    // The deadline is the library's; WasmEdge's memories and tables are not capped here, and
    // its WASI's socket functions (sock_open, sock_connect, ...) cannot be confined: a module
    // importing them runs only with the whole network allowed.
    const CAPABILITIES: Capabilities = Capabilities {
        deadline: true,
        ..Capabilities::NONE
    };
    const NAME: &'static str = "wasmedge";
    /// A loaded and validated module; WasmEdge instantiates it at run time.
    type Module = Module;

    fn new(config: &EngineConfig) -> anyhow::Result<Self> {
        config.refuse_all(Self::NAME)?;
        // libwasmedge logs failures (a trap, a directory it cannot preopen) to stderr, which
        // in the container is the task's stderr. They reach the shim log as our errors instead.
        LogManager::log_off();
        Ok(Self)
    }

    fn compile(&self, bytes: &[u8], entry: &str) -> anyhow::Result<Module> {
        let module =
            Module::from_bytes(None, bytes).context("WasmEdge failed to load or validate it")?;
        check_entry(&module, entry)?;
        check_imports(&module, &wasi_functions()?)?;
        Ok(module)
    }

    fn run(&self, module: &Module, ctx: &WasiContext) -> anyhow::Result<i32> {
        let args = without_nul("argument", ctx.args.iter().cloned())?;
        let env = without_nul(
            "environment variable",
            ctx.env
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        )?;
        let preopens = ctx
            .preopens
            .iter()
            .filter(|dir| dir.guest_path != CWD_PREOPEN)
            .map(preopen_spec)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut wasi = WasiModule::create(
            Some(args.iter().map(String::as_str).collect()),
            Some(env.iter().map(String::as_str).collect()),
            Some(preopens.iter().map(String::as_str).collect()),
        )
        .context("create the WASI module")?;
        // libwasmedge's C API counts `proc_exit` as success (wasmedge-sys gives `Ok`), and its
        // WASI module keeps the code (0 until `proc_exit` sets one): read it either way.
        match call_entry(&mut wasi, module, &ctx.entry) {
            Ok(()) => Ok(exit_status(wasi.exit_code())),
            Err(e) if is_proc_exit(&e) => Ok(exit_status(wasi.exit_code())),
            Err(e) => Err(e).with_context(|| format!("entry point `{}`", ctx.entry)),
        }
    }
}

/// Instantiates `module` against `wasi` (which runs its start function, if any) and calls
/// `entry`. The store borrows `wasi` only until this returns, so its exit code can be read.
fn call_entry(
    wasi: &mut WasiModule,
    module: &Module,
    entry: &str,
) -> Result<(), Box<WasmEdgeError>> {
    let mut imports: HashMap<String, &mut Instance> = HashMap::new();
    imports.insert(WasiModule::name(wasi).to_string(), wasi.as_mut());
    let mut vm = Vm::new(Store::new(None, imports)?);
    vm.register_module(None, module.clone())?;
    vm.run_func(None, entry, std::iter::empty())?;
    Ok(())
}

/// `proc_exit` ends the module with WasmEdge's "terminated" error; its code is kept by the
/// WASI module.
fn is_proc_exit(error: &WasmEdgeError) -> bool {
    matches!(
        error,
        WasmEdgeError::Core(CoreError::Common(CoreCommonError::Terminated))
    )
}

/// WASI exit codes are u32; a process status keeps the low 8 bits of whatever we return, so
/// the bit pattern is all that matters.
fn exit_status(code: u32) -> i32 {
    i32::from_ne_bytes(code.to_ne_bytes())
}

fn check_entry(module: &Module, entry: &str) -> anyhow::Result<()> {
    match module.get_export(entry) {
        Some(ExternalInstanceType::Func(ty)) if ty.args_len() == 0 => Ok(()),
        Some(ExternalInstanceType::Func(ty)) => bail!(
            "exported function `{entry}` takes parameters {:?}; an entry point takes none",
            ty.args()
        ),
        Some(_) => bail!("export `{entry}` is not a function"),
        None => bail!("the module has no exported function `{entry}`"),
    }
}

/// The WASI preview 1 functions this libwasmedge provides, with their types.
fn wasi_functions() -> anyhow::Result<HashMap<String, FuncType>> {
    let wasi = WasiModule::create(None, None, None).context("create the WASI module")?;
    let mut functions = HashMap::new();
    for name in wasi.as_ref().func_names().unwrap_or_default() {
        let ty = wasi
            .as_ref()
            .get_func(&name)
            .with_context(|| format!("WASI function `{name}`"))?
            .ty()
            .with_context(|| format!("WASI function `{name}` has no type"))?;
        functions.insert(name, ty);
    }
    Ok(functions)
}

/// Every import must be a WASI function of the same type: WasmEdge would otherwise fail only
/// when the container starts, and `create` is where a user learns what is wrong.
fn check_imports(module: &Module, wasi: &HashMap<String, FuncType>) -> anyhow::Result<()> {
    for import in module.imports() {
        let (namespace, name) = (import.module_name(), import.name());
        let provided = if namespace == WASI_MODULE {
            wasi.get(name.as_ref())
        } else {
            None
        };
        let Some(provided) = provided else {
            bail!("unknown import `{namespace}::{name}`: WasmEdge provides only {WASI_MODULE}");
        };
        match import
            .ty()
            .with_context(|| format!("type of import `{namespace}::{name}`"))?
        {
            ExternalInstanceType::Func(wanted) if wanted == *provided => {}
            ExternalInstanceType::Func(wanted) => bail!(
                "import `{namespace}::{name}` has type {wanted:?}, but WasmEdge's is {provided:?}"
            ),
            _ => bail!("import `{namespace}::{name}` is not a function, and WASI's is"),
        }
    }
    Ok(())
}

/// WasmEdge takes C strings: a NUL inside one would make the SDK panic.
fn without_nul(what: &str, items: impl Iterator<Item = String>) -> anyhow::Result<Vec<String>> {
    items
        .map(|item| {
            if item.contains('\0') {
                bail!("{what} {item:?} contains a NUL byte");
            }
            Ok(item)
        })
        .collect()
}

/// WasmEdge's preopen syntax: `GUEST:HOST`, plus `:readonly`. It skips a directory it cannot
/// open with only a log line, so a missing one is reported here.
fn preopen_spec(dir: &Preopen) -> anyhow::Result<String> {
    let host = dir.host_path.to_str().with_context(|| {
        format!(
            "preopen {}: WasmEdge takes UTF-8 paths",
            dir.host_path.display()
        )
    })?;
    for path in [host, dir.guest_path.as_str()] {
        if path.contains([':', '\0']) {
            bail!("preopen {path:?}: WasmEdge cannot preopen a path with ':' or NUL in it");
        }
    }
    if !dir.host_path.is_dir() {
        bail!("preopen {host} as {}: not a directory", dir.guest_path);
    }
    let mode = if dir.read_only { ":readonly" } else { "" };
    Ok(format!("{}:{host}{mode}", dir.guest_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmedge_sdk::wat2wasm;

    fn wat(text: &str) -> Vec<u8> {
        wat2wasm(text.as_bytes()).unwrap().into_owned()
    }

    fn context(entry: &str) -> WasiContext {
        WasiContext {
            args: vec!["m.wasm".into()],
            env: vec![],
            preopens: vec![],
            entry: entry.into(),
            network: false,
            container: "test".into(),
            settings: Default::default(),
            annotations: Default::default(),
        }
    }

    #[test]
    fn compile_checks_the_entry_and_the_imports() {
        let engine = WasmEdgeEngine::new(&EngineConfig::default()).unwrap();
        let ok = wat(r#"(module (func (export "_start")) (func (export "greet")))"#);
        engine.compile(&ok, "_start").unwrap();
        engine.compile(&ok, "greet").unwrap();
        let err = engine.compile(&ok, "missing").unwrap_err();
        assert!(
            err.to_string().contains("no exported function `missing`"),
            "{err}"
        );

        let unknown = wat(r#"(module (import "env" "nope" (func)) (func (export "_start")))"#);
        let err = engine.compile(&unknown, "_start").unwrap_err();
        assert!(format!("{err:#}").contains("env::nope"), "{err:#}");

        let wrong_type = wat(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i64)))
                (func (export "_start")))"#,
        );
        let err = engine.compile(&wrong_type, "_start").unwrap_err();
        assert!(format!("{err:#}").contains("proc_exit"), "{err:#}");

        let wasi = wat(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                (func (export "_start")))"#,
        );
        engine.compile(&wasi, "_start").unwrap();

        let err = engine
            .compile(b"\0asm\x01\0\0\0garbage", "_start")
            .unwrap_err();
        assert!(format!("{err:#}").contains("load or validate"), "{err:#}");
    }

    #[test]
    fn exit_codes_and_traps() {
        let engine = WasmEdgeEngine::new(&EngineConfig::default()).unwrap();
        let run = |text: &str, entry: &str| {
            let module = engine.compile(&wat(text), entry).unwrap();
            engine.run(&module, &context(entry))
        };
        let exits = r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1)
                (func (export "_start") (call $exit (i32.const 42))))"#;
        assert_eq!(run(exits, "_start").unwrap(), 42);
        let returns = r#"(module (memory (export "memory") 1) (func (export "greet")))"#;
        assert_eq!(run(returns, "greet").unwrap(), 0);
        let traps = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
        let err = run(traps, "_start").unwrap_err();
        assert!(format!("{err:#}").contains("unreachable"), "{err:#}");
    }

    #[test]
    fn preopens_use_wasmedge_syntax() {
        let dir = |host: &str, read_only| Preopen {
            host_path: host.into(),
            guest_path: "/".into(),
            read_only,
        };
        assert_eq!(preopen_spec(&dir("/", false)).unwrap(), "/:/");
        assert_eq!(preopen_spec(&dir("/", true)).unwrap(), "/:/:readonly");
        let err = preopen_spec(&dir("/no/such/dir", false)).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        let err = preopen_spec(&dir("/a:b", false)).unwrap_err();
        assert!(err.to_string().contains("':'"), "{err}");
    }
}
