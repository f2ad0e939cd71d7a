//! `wasi:http/proxy` components, served over HTTP with a fresh instance per request.
//!
//! The component is compiled and linked in the create helper (so link errors fail `create`);
//! the init process then moves it into a serving engine with the pooling allocator and runs
//! a tokio/hyper server in the container's network namespace until SIGTERM.

mod handler;
mod pooling;
mod server;
mod settings;

use std::sync::Arc;

use containerd_shim_wasm::WasiContext;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use handler::{Handler, RequestState};

/// A proxy component linked against WASI 0.2 and wasi:http.
pub struct ProxyComponent {
    component: Component,
}

/// Checks that `component` links as a `wasi:http/proxy` (imports satisfied, handler exported).
pub fn link_proxy(
    engine: &wasmtime::Engine,
    component: Component,
) -> anyhow::Result<ProxyComponent> {
    proxy_pre(engine, &component)?;
    Ok(ProxyComponent { component })
}

fn proxy_pre(
    engine: &wasmtime::Engine,
    component: &Component,
) -> anyhow::Result<ProxyPre<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(ProxyPre::new(linker.instantiate_pre(component)?)?)
}

/// Serves the component until SIGTERM/SIGINT; 0 once in-flight requests have finished.
pub fn serve(proxy: &ProxyComponent, ctx: &WasiContext) -> anyhow::Result<i32> {
    let settings = settings::Settings::from_env(&ctx.env)?;
    let (engine, allocator, refused) =
        pooling::serving_engine(crate::engine::base_config(), pooling::pool_config())?;
    if let Some(why) = refused {
        eprintln!("wasmtime-shim: pooling allocator unavailable, allocating on demand: {why}");
    }
    // Pooling does not change compiled code: the create helper's compilation moves over as is.
    let artifact = proxy.component.serialize()?;
    // SAFETY: the bytes were serialized just now by this wasmtime build.
    let component = unsafe { Component::deserialize(&engine, &artifact) }?;
    let handler = Arc::new(Handler::new(
        proxy_pre(&engine, &component)?,
        ctx,
        pooling::MAX_INSTANCES,
    ));
    server::run(handler.clone(), &settings)?;
    eprintln!(
        "wasmtime-shim: stopped ({allocator:?} allocator; {})",
        handler.stats.summary()
    );
    Ok(0)
}
