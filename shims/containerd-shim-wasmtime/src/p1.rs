//! Core modules: linked against WASI preview 1 and called through their entry export.

use anyhow::{Context, bail};
use containerd_shim_wasm::WasiContext;
use wasmtime::{ExternType, GuestProfiler, InstancePre, Linker, Module, Store, StoreLimits};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p1::{self, WasiP1Ctx};

use crate::component::wasi_builder;
use crate::debugging::DebuggedRun;

/// A module linked against WASI preview 1, ready to instantiate.
pub struct LinkedModule {
    pre: InstancePre<ModuleState>,
}

/// A module's store data: WASI and the container's limits.
pub struct ModuleState {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
    profiler: Option<GuestProfiler>,
}

/// Checks the entry export and links WASI preview 1.
pub fn link(
    engine: &wasmtime::Engine,
    module: Module,
    entry: &str,
) -> anyhow::Result<LinkedModule> {
    match module.get_export(entry) {
        Some(ExternType::Func(_)) => {}
        Some(_) => bail!("export `{entry}` is not a function"),
        None => bail!("the module has no exported function `{entry}`"),
    }
    let mut linker = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |state: &mut ModuleState| &mut state.wasi)?;
    let pre = linker.instantiate_pre(&module)?;
    Ok(LinkedModule { pre })
}

/// Runs the entry point; `proc_exit`'s code or 0 when it returns.
pub fn run(
    engine: &wasmtime::Engine,
    module: &LinkedModule,
    ctx: &WasiContext,
) -> anyhow::Result<i32> {
    let began = std::time::Instant::now();
    let state = ModuleState {
        wasi: wasi_builder(ctx, true)?.build_p1(),
        limits: crate::limits::store_limits(&ctx.settings),
        profiler: None,
    };
    let mut store = Store::new(engine, state);
    crate::limits::apply(&mut store, |state| &mut state.limits, None);
    let debugged = DebuggedRun::start(
        &mut store,
        ctx,
        |state| &mut state.profiler,
        |interval| {
            let name = &ctx.args[0];
            let modules = [(name.clone(), module.pre.module().clone())];
            Ok(GuestProfiler::new(engine, name, interval, modules)?)
        },
    )?;
    let result = call_entry(&mut store, module, ctx, began);
    debugged.finish(&mut store, ctx, result)
}

fn call_entry(
    store: &mut Store<ModuleState>,
    module: &LinkedModule,
    ctx: &WasiContext,
    began: std::time::Instant,
) -> anyhow::Result<i32> {
    let instance = module
        .pre
        .instantiate(&mut *store)
        .map_err(anyhow::Error::from)
        .context("instantiate")?;
    log::debug!("{}: instantiated in {:?}", ctx.args[0], began.elapsed());
    let func = instance
        .get_typed_func::<(), ()>(&mut *store, &ctx.entry)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("entry point `{}`", ctx.entry))?;
    match func.call(&mut *store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(anyhow::Error::from(e)),
        },
    }
}
