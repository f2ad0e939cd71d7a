//! WASI 0.2 components: which world a component serves, the WASI context (shared with core
//! modules), and running `wasi:cli/run` commands.

use anyhow::{Context, anyhow, bail};
use containerd_shim_wasm::WasiContext;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The export that makes a component a command, `wasi:cli/run@0.2.x`.
const CLI_RUN: &str = "wasi:cli/run@0.2.";
/// The export that makes a component an HTTP handler, `wasi:http/incoming-handler@0.2.x`.
const HTTP_HANDLER: &str = "wasi:http/incoming-handler@0.2.";

/// What a component is, from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Exports `wasi:cli/run`: run once, like a module.
    Command,
    /// Exports `wasi:http/incoming-handler`: served over HTTP, one instance per request.
    /// Wins over `wasi:cli/run` when a component exports both.
    Proxy,
}

/// The world `component` targets, or an error naming what it exports instead.
pub fn world(engine: &wasmtime::Engine, component: &Component) -> anyhow::Result<World> {
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|name| name.starts_with(HTTP_HANDLER)) {
        Ok(World::Proxy)
    } else if exports.iter().any(|name| name.starts_with(CLI_RUN)) {
        Ok(World::Command)
    } else {
        bail!(
            "the component exports neither wasi:cli/run@0.2 nor wasi:http/incoming-handler@0.2 \
             (its exports: {})",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        )
    }
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
/// only when the container allows it.
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
    if ctx.network {
        wasi.inherit_network()
            .allow_ip_name_lookup(true)
            .allow_tcp(true)
            .allow_udp(true);
    }
    Ok(wasi)
}

/// A command's store data: WASI and its resources.
pub struct CommandState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for CommandState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A `wasi:cli/run` component linked against WASI 0.2, ready to instantiate.
pub struct LinkedCommand {
    pre: CommandPre<CommandState>,
}

pub fn link_command(
    engine: &wasmtime::Engine,
    component: &Component,
) -> anyhow::Result<LinkedCommand> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let pre = CommandPre::new(linker.instantiate_pre(component)?)?;
    Ok(LinkedCommand { pre })
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
    };
    let mut store = Store::new(engine, state);
    let instance = command
        .pre
        .instantiate(&mut store)
        .map_err(anyhow::Error::from)
        .context("instantiate")?;
    log::debug!("{}: instantiated in {:?}", ctx.args[0], began.elapsed());
    match instance.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(anyhow!(e)),
        },
    }
}
