//! HTTP servers: `wasi:http/proxy` (WASI 0.2) components with a fresh instance per request,
//! and `wasi:http/service` (WASI 0.3) components, whose instances may be reused (`service`).
//!
//! The component is compiled and linked in the create helper (so link errors fail `create`);
//! the init process then moves it into a serving engine with the pooling allocator and runs
//! a tokio/hyper server in the container's network namespace until SIGTERM.

mod handler;
mod pooling;
pub mod server;
mod service;
pub mod settings;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use containerd_shim_wasm::{EngineConfig, WasiContext};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::component::{Wasi, missing_import};
use handler::Handler;
pub use handler::{HostData, InstanceSetup, RequestState};
use service::Service;
use settings::{Reuse, Settings};

/// Adds an embedder's host interfaces to a server's linker (the Spin shim's
/// `fermyon:spin/*`); their state is the instance's [`RequestState::host_data`].
pub type AddHostInterfaces = fn(&mut Linker<RequestState>) -> anyhow::Result<()>;

/// A server component, linked against the WASI release of its world (and the embedder's host
/// interfaces, if any).
pub struct HttpComponent {
    component: Component,
    wasi: Wasi,
    host_interfaces: Option<AddHostInterfaces>,
}

/// Checks that `component` links as a server of its WASI release (imports satisfied, handler
/// exported).
pub fn link(
    engine: &wasmtime::Engine,
    component: Component,
    wasi: Wasi,
    host_interfaces: Option<AddHostInterfaces>,
) -> anyhow::Result<HttpComponent> {
    let server = HttpComponent {
        component,
        wasi,
        host_interfaces,
    };
    match wasi {
        Wasi::P2 => drop(proxy_pre(engine, &server, &server.component)?),
        Wasi::P3 => drop(service::service_pre(engine, &server, &server.component)?),
    }
    Ok(server)
}

/// `component` (`server`'s, maybe moved to another engine) pre-instantiated as a 0.2 server.
fn proxy_pre(
    engine: &wasmtime::Engine,
    server: &HttpComponent,
    component: &Component,
) -> anyhow::Result<ProxyPre<RequestState>> {
    let pre = wasi_p2_linker(engine, server)?
        .instantiate_pre(component)
        .map_err(missing_import)?;
    Ok(ProxyPre::new(pre)?)
}

/// A linker with all of WASI 0.2, wasi:http included, and `server`'s host interfaces: what a
/// 0.2 server imports, and what a 0.3 server may import beside WASI 0.3
/// (`service::service_pre` adds that).
fn wasi_p2_linker(
    engine: &wasmtime::Engine,
    server: &HttpComponent,
) -> anyhow::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    if let Some(add) = server.host_interfaces {
        add(&mut linker)?;
    }
    Ok(linker)
}

/// Serves the component until SIGTERM/SIGINT; 0 once in-flight requests have finished.
pub fn serve(
    server: &HttpComponent,
    ctx: &WasiContext,
    options: &EngineConfig,
) -> anyhow::Result<i32> {
    let settings = Settings::new(&ctx.env, &ctx.annotations)?;
    // Checked before serving, so that a bad value fails the task at start, not at a trap.
    crate::debugging::coredump::CoreDumps::from_annotations(&ctx.annotations)?;
    let serving = Serving::new(options)?;
    // The server sees no directory: a fresh instance per request should not cost directory
    // opens, and wasmtime serve gives none either.
    let ctx = WasiContext {
        preopens: Vec::new(),
        ..ctx.clone()
    };
    let responder =
        Arc::new(serving.responder(server, &ctx, InstanceSetup::default(), settings.reuse)?);
    let respond = responder.clone();
    server::run(
        move |request, _client| {
            let respond = respond.clone();
            async move { Ok::<_, Infallible>(respond.respond(request).await) }
        },
        &settings,
    )?;
    eprintln!(
        "wasmtime-shim: stopped ({:?} allocator; {})",
        serving.allocator,
        responder.summary()
    );
    Ok(0)
}

/// The engine requests run in: wasmtime's pooling allocator (or allocation on demand where the
/// host refuses the pool's reservation), with one slot per instance the pool holds, shared by
/// every component served.
pub struct Serving {
    engine: wasmtime::Engine,
    pub allocator: pooling::Allocator,
    slots: Arc<Semaphore>,
    /// Whether the epoch advances (once a responder has a request deadline).
    ticking: std::sync::Once,
}

impl Serving {
    /// The serving engine for the runtime options `options` (those of the engine that
    /// compiled the components).
    pub fn new(options: &EngineConfig) -> anyhow::Result<Self> {
        let instances = options
            .pooling_max_instances
            .unwrap_or(pooling::MAX_INSTANCES);
        let (engine, allocator, refused) = pooling::serving_engine(
            crate::engine::base_config(options)?,
            pooling::pool_config(instances, options.pooling_max_memory_size),
        )?;
        if let Some(why) = refused {
            eprintln!("wasmtime-shim: pooling allocator unavailable, allocating on demand: {why}");
        }
        Ok(Self {
            engine,
            allocator,
            slots: Arc::new(Semaphore::new(instances as usize)),
            ticking: std::sync::Once::new(),
        })
    }

    /// What answers the requests for `server`, whose instances get `ctx` and `setup` (and,
    /// for a WASI 0.3 server, are reused as `reuse` says).
    pub fn responder(
        &self,
        server: &HttpComponent,
        ctx: &WasiContext,
        setup: InstanceSetup,
        reuse: Reuse,
    ) -> anyhow::Result<Responder> {
        if ctx.settings.request_deadline.is_some() {
            let mut started = Ok(());
            self.ticking
                .call_once(|| started = crate::limits::start_ticker(&self.engine));
            started?;
        }
        // Pooling does not change compiled code: the create helper's compilation moves over
        // as is.
        let artifact = server.component.serialize()?;
        // SAFETY: the bytes were serialized just now by this wasmtime build.
        let component = unsafe { Component::deserialize(&self.engine, &artifact) }?;
        let kind = match server.wasi {
            Wasi::P2 => {
                if reuse.reuses() {
                    eprintln!(
                        "wasmtime-shim: instance reuse applies to WASI 0.3 servers; this WASI \
                         0.2 server takes a fresh instance per request"
                    );
                }
                Kind::P2(Arc::new(Handler::new(
                    proxy_pre(&self.engine, server, &component)?,
                    ctx,
                    setup,
                    self.slots.clone(),
                )))
            }
            Wasi::P3 => Kind::P3(
                Arc::new(Service::new(
                    service::service_pre(&self.engine, server, &component)?,
                    ctx,
                    setup,
                    reuse,
                    self.slots.clone(),
                )),
                reuse,
            ),
        };
        Ok(Responder {
            kind,
            deadline: ctx.settings.request_deadline,
        })
    }
}

/// A response body of either WASI release.
pub type ResponseBody = UnsyncBoxBody<Bytes, anyhow::Error>;

/// Answers the requests of one server component.
pub struct Responder {
    kind: Kind,
    /// The container's request deadline.
    deadline: Option<Duration>,
}

enum Kind {
    P2(Arc<Handler>),
    P3(Arc<Service>, Reuse),
}

impl Responder {
    /// The component's response; a 500 when it trapped or gave none, a 504 when it gave none
    /// within the request deadline (logged on the container's stderr).
    pub async fn respond(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let Some(deadline) = self.deadline else {
            return self.respond_in_time(request).await;
        };
        let (method, uri) = (request.method().clone(), request.uri().clone());
        match tokio::time::timeout(deadline, self.respond_in_time(request)).await {
            Ok(response) => response,
            Err(_) => handler::gateway_timeout(&method, &uri, deadline),
        }
    }

    async fn respond_in_time(&self, request: Request<Incoming>) -> Response<ResponseBody> {
        let boxed = |response: Response<_>| {
            response.map(|body: UnsyncBoxBody<Bytes, _>| {
                body.map_err(|code| anyhow::anyhow!("{code:?}"))
                    .boxed_unsync()
            })
        };
        match &self.kind {
            Kind::P2(handler) => match handler.clone().handle(request).await {
                Ok(response) => boxed(response),
                Err(never) => match never {},
            },
            Kind::P3(service, _) => match service.clone().handle(request).await {
                Ok(response) => boxed(response),
                Err(never) => match never {},
            },
        }
    }

    /// Instances made and their instantiation times, for the log at exit.
    pub fn summary(&self) -> String {
        match &self.kind {
            Kind::P2(handler) => handler.stats.summary(),
            Kind::P3(service, reuse) => format!("{reuse:?}; {}", service.stats().summary()),
        }
    }
}
