//! HTTP servers: `wasi:http/proxy` (WASI 0.2) components with a fresh instance per request,
//! and `wasi:http/service` (WASI 0.3) components, whose instances may be reused (`service`).
//!
//! The component is compiled and linked in the create helper (so link errors fail `create`);
//! the init process then moves it into a serving engine with the pooling allocator and runs
//! a tokio/hyper server in the container's network namespace until SIGTERM.

mod handler;
mod pooling;
mod server;
mod service;
mod settings;

use std::sync::Arc;

use containerd_shim_wasm::WasiContext;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::component::{Wasi, missing_import};
use handler::{Handler, RequestState};
use service::Service;

/// A server component, linked against the WASI release of its world.
pub struct HttpComponent {
    component: Component,
    wasi: Wasi,
}

/// Checks that `component` links as a server of its WASI release (imports satisfied, handler
/// exported).
pub fn link(
    engine: &wasmtime::Engine,
    component: Component,
    wasi: Wasi,
) -> anyhow::Result<HttpComponent> {
    match wasi {
        Wasi::P2 => drop(proxy_pre(engine, &component)?),
        Wasi::P3 => drop(service::service_pre(engine, &component)?),
    }
    Ok(HttpComponent { component, wasi })
}

fn proxy_pre(
    engine: &wasmtime::Engine,
    component: &Component,
) -> anyhow::Result<ProxyPre<RequestState>> {
    let pre = wasi_p2_linker(engine)?
        .instantiate_pre(component)
        .map_err(missing_import)?;
    Ok(ProxyPre::new(pre)?)
}

/// A linker with all of WASI 0.2, wasi:http included: what a 0.2 server imports, and what a 0.3
/// server may import beside WASI 0.3 (`service::service_pre` adds that).
fn wasi_p2_linker(engine: &wasmtime::Engine) -> anyhow::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// Serves the component until SIGTERM/SIGINT; 0 once in-flight requests have finished.
pub fn serve(server: &HttpComponent, ctx: &WasiContext) -> anyhow::Result<i32> {
    let settings = settings::Settings::from_env(&ctx.env)?;
    let (engine, allocator, refused) =
        pooling::serving_engine(crate::engine::base_config(), pooling::pool_config())?;
    if let Some(why) = refused {
        eprintln!("wasmtime-shim: pooling allocator unavailable, allocating on demand: {why}");
    }
    // Pooling does not change compiled code: the create helper's compilation moves over as is.
    let artifact = server.component.serialize()?;
    // SAFETY: the bytes were serialized just now by this wasmtime build.
    let component = unsafe { Component::deserialize(&engine, &artifact) }?;
    let summary = match server.wasi {
        Wasi::P2 => {
            if settings.reuse.reuses() {
                eprintln!(
                    "wasmtime-shim: instance reuse applies to WASI 0.3 servers; this WASI 0.2 \
                     server takes a fresh instance per request"
                );
            }
            let handler = Arc::new(Handler::new(
                proxy_pre(&engine, &component)?,
                ctx,
                pooling::MAX_INSTANCES,
            ));
            let respond = handler.clone();
            server::run(move |request| respond.clone().handle(request), &settings)?;
            handler.stats.summary()
        }
        Wasi::P3 => {
            let service = Arc::new(Service::new(
                service::service_pre(&engine, &component)?,
                ctx,
                settings.reuse,
                pooling::MAX_INSTANCES,
            ));
            let respond = service.clone();
            server::run(move |request| respond.clone().handle(request), &settings)?;
            format!("{:?}; {}", settings.reuse, service.stats().summary())
        }
    };
    eprintln!("wasmtime-shim: stopped ({allocator:?} allocator; {summary})");
    Ok(0)
}
