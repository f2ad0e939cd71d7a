//! WASI 0.3 servers (`wasi:http/service`, exporting `wasi:http/handler@0.3`), dispatched by
//! wasmtime-wasi-http's `ProxyHandler`: it hands each request to an instance willing to take
//! it and starts one when none is. How many requests an instance takes, one after another and
//! at once, is the container's [`Reuse`] setting; by default one, as for WASI 0.2 servers.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use containerd_shim_wasm::WasiContext;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, GuestTaskId};
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use super::handler::{InstanceSetup, InstantiationStats, RequestState, internal_error};
use super::settings::Reuse;
use crate::component::missing_import;
use crate::debugging::coredump;

/// Links `component` against WASI 0.3 and 0.2 (wasi:http included: a 0.3 server may still
/// import 0.2 interfaces) and checks that it exports `wasi:http/handler@0.3`.
pub fn service_pre(
    engine: &wasmtime::Engine,
    server: &super::HttpComponent,
    component: &Component,
) -> anyhow::Result<ServicePre<RequestState>> {
    let mut linker = super::wasi_p2_linker(engine, server)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    let pre = linker.instantiate_pre(component).map_err(missing_import)?;
    Ok(ServicePre::new(pre)?)
}

/// A WASI 0.3 server's requests, dispatched to its instances.
pub struct Service {
    handler: ProxyHandler<Instances>,
    stats: Arc<InstantiationStats>,
}

impl Service {
    pub fn new(
        pre: ServicePre<RequestState>,
        ctx: &WasiContext,
        setup: InstanceSetup,
        reuse: Reuse,
        slots: Arc<Semaphore>,
    ) -> Self {
        let stats = Arc::new(InstantiationStats::default());
        Self {
            handler: ProxyHandler::new(Instances {
                engine: pre.engine().clone(),
                pre: ProxyPre::P3(pre),
                ctx: Arc::new(ctx.clone()),
                setup,
                reuse,
                slots,
                stats: stats.clone(),
            }),
            stats,
        }
    }

    pub fn stats(&self) -> &InstantiationStats {
        &self.stats
    }

    /// The guest's response, or a 500 (logged to the container's stderr) when it trapped,
    /// answered with an error code or could not be instantiated.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<WasiBody>, Infallible> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let request =
            request.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
        match self.handler.handle((), request).await {
            Ok(response) => Ok(response),
            Err(e) => Ok(internal_error(&method, &uri, &anyhow::Error::from(e))),
        }
    }
}

/// Makes the instances: a store with the container's WASI and an instance of the component.
pub struct Instances {
    engine: wasmtime::Engine,
    pre: ProxyPre<RequestState>,
    ctx: Arc<WasiContext>,
    setup: InstanceSetup,
    reuse: Reuse,
    /// One permit per instance the pooling allocator can hold at once; an instance keeps its
    /// permit until it is dropped, so requests beyond the pool wait instead of failing.
    slots: Arc<Semaphore>,
    stats: Arc<InstantiationStats>,
}

impl HandlerState for Instances {
    type StoreData = RequestState;
    type WorkerExpiration = IdleExpiration;
    type WorkerState = InstanceLimits;

    async fn instantiate(
        &self,
    ) -> wasmtime::Result<Instance<RequestState, IdleExpiration, InstanceLimits>> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| wasmtime::Error::from_anyhow(e.into()))?;
        let state =
            RequestState::new(&self.ctx, &self.setup).map_err(wasmtime::Error::from_anyhow)?;
        // A reused instance outlives any one request: only a fresh one per request has the
        // request's deadline in its store (the responder's timeout covers the others).
        let deadline = self
            .ctx
            .settings
            .request_deadline
            .filter(|_| !self.reuse.reuses());
        let mut store = RequestState::store(&self.engine, state, deadline);
        let started = Instant::now();
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.stats.record(started.elapsed());
        Ok(Instance {
            store,
            proxy,
            view: <RequestState as WasiHttpView>::http,
            expiration: IdleExpiration::new(self.reuse.idle),
            state: InstanceLimits {
                reuse: self.reuse,
                ctx: self.ctx.clone(),
                _slot: slot,
            },
        })
    }
}

/// How many requests an instance takes: [`Reuse`], and the pool slot it holds.
pub struct InstanceLimits {
    reuse: Reuse,
    /// The container's, for the core dump of an instance that trapped.
    ctx: Arc<WasiContext>,
    _slot: OwnedSemaphorePermit,
}

impl WorkerState for InstanceLimits {
    type StoreData = RequestState;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.reuse.max_requests {
            ShouldAccept::Never
        } else if concurrent >= self.reuse.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, RequestState>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        // No request deadline: a request runs as long as its client waits, as under
        // `wasmtime serve` without `--wasm timeout`.
        Box::pin(std::future::pending())
    }

    fn drop(&self, mut store: Store<RequestState>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            let e = anyhow::Error::from(e);
            coredump::write_if_asked(&e, &mut store, &self.ctx);
            eprintln!(
                "wasmtime-shim: dropped an instance after: {}",
                coredump::describe(&e)
            );
        }
    }
}

/// An idle instance is dropped after [`Reuse::idle`]; one at work never.
pub struct IdleExpiration {
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleExpiration {
    fn new(idle: Duration) -> Self {
        Self { idle, timer: None }
    }
}

impl WorkerExpiration for IdleExpiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if status != WorkerStatus::Idle {
            self.timer = None;
            return Poll::Pending;
        }
        let deadline = tokio::time::Instant::from_std(start + self.idle);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}
