//! WASI components: which world a component serves, the WASI context (shared with core
//! modules), and running `wasi:cli/run` commands of WASI 0.2 and 0.3.

use anyhow::{Context, anyhow, bail};
use containerd_shim_wasm::WasiContext;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{GuestProfiler, Store};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::debugging::DebuggedRun;

/// The WASI release a component's world belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wasi {
    /// WASI 0.2.x: synchronous exports (the host drives the 0.2 server per request).
    P2,
    /// WASI 0.3.x: async exports, `stream` and `future` (the component model's async ABI).
    P3,
}

/// What a component is, from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Exports `wasi:cli/run`: run once, like a module.
    Command(Wasi),
    /// Exports `wasi:http/incoming-handler@0.2` or `wasi:http/handler@0.3`: served over HTTP.
    /// Wins over `wasi:cli/run` when a component exports both, and 0.3 over 0.2.
    HttpServer(Wasi),
}

/// The exports that make a world, by precedence; any patch version matches (`0.2.0` …
/// `0.2.12`, `0.3.0` …), and other exports (componentize-py's `init`, say) are ignored.
const WORLD_EXPORTS: [(&str, World); 4] = [
    ("wasi:http/handler@0.3.", World::HttpServer(Wasi::P3)),
    (
        "wasi:http/incoming-handler@0.2.",
        World::HttpServer(Wasi::P2),
    ),
    ("wasi:cli/run@0.3.", World::Command(Wasi::P3)),
    ("wasi:cli/run@0.2.", World::Command(Wasi::P2)),
];

/// The world `component` targets, or an error naming what it exports instead.
pub fn world(engine: &wasmtime::Engine, component: &Component) -> anyhow::Result<World> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    for (prefix, world) in WORLD_EXPORTS {
        if exports.iter().any(|name| name.starts_with(prefix)) {
            return Ok(world);
        }
    }
    bail!(
        "the component exports none of wasi:cli/run@0.2, wasi:cli/run@0.3, \
         wasi:http/incoming-handler@0.2 and wasi:http/handler@0.3, the worlds the wasmtime \
         shim runs (its exports: {})",
        if exports.is_empty() {
            "none".to_string()
        } else {
            exports.join(", ")
        }
    )
}

/// Components have no entry function to pick: only the default entry is accepted.
pub fn check_entry(entry: &str) -> anyhow::Result<()> {
    if entry != "_start" {
        bail!(
            "a component has no entry function to choose: `#{entry}` only applies to core modules"
        );
    }
    Ok(())
}

/// The container's args, env and stdio; its directories when `with_preopens`; the network
/// only when the container allows it, to its allowed outbound hosts when it lists them.
pub fn wasi_builder(ctx: &WasiContext, with_preopens: bool) -> anyhow::Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().args(&ctx.args).envs(&ctx.env);
    if with_preopens {
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
    }
    match &ctx.settings.allowed_outbound_hosts {
        Some(hosts) => crate::outbound::allow_sockets(
            &mut wasi,
            &std::sync::Arc::new(hosts.clone()),
            &format!("container {}", ctx.container),
        ),
        None if ctx.network => {
            wasi.inherit_network()
                .allow_ip_name_lookup(true)
                .allow_tcp(true)
                .allow_udp(true);
        }
        None => {}
    }
    Ok(wasi)
}

/// A command's store data: WASI and its resources.
pub struct CommandState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: wasmtime::StoreLimits,
    profiler: Option<GuestProfiler>,
}

impl WasiView for CommandState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A `wasi:cli/run` component linked against WASI, ready to instantiate.
pub enum LinkedCommand {
    /// Against WASI 0.2, called synchronously.
    P2(wasmtime_wasi::p2::bindings::sync::CommandPre<CommandState>),
    /// Against WASI 0.3 and 0.2 (a 0.3 component may import both), called on the component
    /// model's event loop.
    P3(wasmtime_wasi::p3::bindings::CommandPre<CommandState>),
}

pub fn link_command(
    engine: &wasmtime::Engine,
    component: &Component,
    wasi: Wasi,
) -> anyhow::Result<LinkedCommand> {
    let mut linker = Linker::new(engine);
    Ok(match wasi {
        Wasi::P2 => {
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
            let pre = linker.instantiate_pre(component).map_err(missing_import)?;
            LinkedCommand::P2(wasmtime_wasi::p2::bindings::sync::CommandPre::new(pre)?)
        }
        Wasi::P3 => {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            wasmtime_wasi::p3::add_to_linker(&mut linker)?;
            let pre = linker.instantiate_pre(component).map_err(missing_import)?;
            LinkedCommand::P3(wasmtime_wasi::p3::bindings::CommandPre::new(pre)?)
        }
    })
}

/// A link error says which import is missing; this says what the shim offers instead.
pub fn missing_import(e: wasmtime::Error) -> anyhow::Error {
    anyhow!(e).context(
        "link the component: the wasmtime shim offers WASI 0.2.x and 0.3.x (wasi:cli, \
         wasi:clocks, wasi:filesystem, wasi:io, wasi:random, wasi:sockets, and wasi:http to HTTP \
         servers)",
    )
}

/// Runs `wasi:cli/run#run`: 0 when it returns ok, 1 when it returns an error, `exit`'s code.
pub fn run_command(
    engine: &wasmtime::Engine,
    command: &LinkedCommand,
    ctx: &WasiContext,
) -> anyhow::Result<i32> {
    let began = std::time::Instant::now();
    let state = CommandState {
        wasi: wasi_builder(ctx, true)?.build(),
        table: ResourceTable::new(),
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
            let component = match command {
                LinkedCommand::P2(pre) => pre.instance_pre().component(),
                LinkedCommand::P3(pre) => pre.instance_pre().component(),
            };
            Ok(GuestProfiler::new_component(
                engine,
                &ctx.args[0],
                interval,
                component.clone(),
                [],
            )?)
        },
    )?;
    let result = call_run(&mut store, command, ctx, began);
    debugged.finish(&mut store, ctx, result)
}

fn call_run(
    store: &mut Store<CommandState>,
    command: &LinkedCommand,
    ctx: &WasiContext,
    began: std::time::Instant,
) -> anyhow::Result<i32> {
    let returned = match command {
        LinkedCommand::P2(pre) => {
            let instance = pre
                .instantiate(&mut *store)
                .map_err(anyhow::Error::from)
                .context("instantiate")?;
            log::debug!("{}: instantiated in {:?}", ctx.args[0], began.elapsed());
            instance.wasi_cli_run().call_run(&mut *store)
        }
        LinkedCommand::P3(pre) => run_p3(pre, store, &ctx.args[0], began)?,
    };
    match returned {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(anyhow::Error::from(e)),
        },
    }
}

/// A WASI 0.3 command's `run`, on a tokio runtime of this thread alone: the component model's
/// event loop (`run_concurrent`) drives the guest's tasks and the host's I/O.
fn run_p3(
    pre: &wasmtime_wasi::p3::bindings::CommandPre<CommandState>,
    store: &mut Store<CommandState>,
    name: &str,
    began: std::time::Instant,
) -> anyhow::Result<wasmtime::Result<Result<(), ()>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(async {
        let instance = pre
            .instantiate_async(&mut *store)
            .await
            .map_err(anyhow::Error::from)
            .context("instantiate")?;
        log::debug!("{name}: instantiated in {:?}", began.elapsed());
        let returned = store
            .run_concurrent(async move |store| instance.wasi_cli_run().call_run(store).await)
            .await;
        // An error of the event loop itself, or the guest's own (a trap, `exit`).
        Ok(returned.and_then(|run| run))
    })
}
