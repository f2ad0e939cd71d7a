//! WASI 0.2 servers, one request each: a fresh store and instance from the pre-instantiated
//! component, the guest's `wasi:http/incoming-handler#handle`, and a 500 when the guest fails
//! to answer. The store data is shared with WASI 0.3 servers (`service`).

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use containerd_shim_wasm::WasiContext;
use containerd_shim_wasm::allowed_hosts::{AllowedHosts, well_known_port};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, Uri};
use tokio::sync::{Semaphore, oneshot};
use wasmtime::component::ResourceTable;
use wasmtime::{Store, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView, default_hooks,
};

use crate::component::wasi_builder;
use crate::debugging::coredump;
use crate::limits::{self, store_limits};
use crate::outbound::allow_sockets;

/// A server instance's store data.
pub struct RequestState {
    wasi: WasiCtx,
    limits: StoreLimits,
    http: WasiHttpCtx,
    table: ResourceTable,
    outgoing: OutgoingPolicy,
    host_data: Option<Box<dyn Any + Send>>,
}

/// Makes the state of an embedder's host interfaces for each new instance.
pub type HostData = Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>;

/// What the instances of one server get beyond their [`WasiContext`] (the Spin shim gives
/// each component its own).
#[derive(Clone, Default)]
pub struct InstanceSetup {
    /// Narrows outgoing HTTP and sockets to these hosts (the context's network must be off:
    /// these hosts are all the instance reaches). `None`: the context's network decides.
    pub allowed_hosts: Option<Arc<AllowedHosts>>,
    /// The state of the host interfaces the server was linked with
    /// (`crate::http::AddHostInterfaces`).
    pub host_data: Option<HostData>,
    /// Who the instances are in messages about them, e.g. `component "users"`.
    pub name: String,
}

impl RequestState {
    /// WASI with `ctx`'s preopens (servers get none unless their embedder gives some), its
    /// limits and outbound hosts, or `setup`'s outbound hosts, and `setup`'s host state.
    pub fn new(ctx: &WasiContext, setup: &InstanceSetup) -> anyhow::Result<Self> {
        let mut wasi = wasi_builder(ctx, true)?;
        if let Some(hosts) = &setup.allowed_hosts {
            allow_sockets(&mut wasi, hosts, &setup.name);
        }
        let (hosts, name) = match &setup.allowed_hosts {
            Some(hosts) => (Some(hosts.clone()), setup.name.clone()),
            None => (
                ctx.settings.allowed_outbound_hosts.clone().map(Arc::new),
                format!("container {}", ctx.container),
            ),
        };
        Ok(Self {
            wasi: wasi.build(),
            limits: store_limits(&ctx.settings),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outgoing: OutgoingPolicy {
                allowed: ctx.network,
                hosts,
                name,
            },
            host_data: setup.host_data.as_ref().map(|make| make()),
        })
    }

    /// The state of the embedder's host interfaces, for the accessor their `add_to_linker`
    /// takes. Only a server linked with host interfaces calls them, and its instances get
    /// their state from the same embedder: anything else is a bug of the embedder.
    pub fn host_data<T: 'static>(&mut self) -> &mut T {
        self.host_data
            .as_mut()
            .and_then(|data| data.downcast_mut())
            .expect("the embedder gave the instance the state of its host interfaces")
    }

    /// A store for an instance, holding to the container's limits, with `deadline` (the
    /// request's) from now.
    pub fn store(
        engine: &wasmtime::Engine,
        state: Self,
        deadline: Option<Duration>,
    ) -> Store<Self> {
        let mut store = Store::new(engine, state);
        limits::apply(&mut store, |state| &mut state.limits, deadline);
        store
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

/// Outgoing HTTP (`wasi:http/outgoing-handler@0.2`, `wasi:http/client@0.3`) goes out only
/// when the container allows the network, or to the allowed hosts.
struct OutgoingPolicy {
    allowed: bool,
    hosts: Option<Arc<AllowedHosts>>,
    name: String,
}

impl OutgoingPolicy {
    fn allows(&self, uri: &Uri) -> bool {
        let Some(hosts) = &self.hosts else {
            return self.allowed;
        };
        let scheme = uri.scheme_str().unwrap_or("http");
        let host = uri.host().unwrap_or_default();
        let port = uri
            .port_u16()
            .or_else(|| well_known_port(scheme))
            .unwrap_or(0);
        let allowed = hosts.allows_request(scheme, host, port);
        if !allowed {
            crate::outbound::refused(
                &self.name,
                &format!("a request to {scheme}://{host}:{port}"),
                hosts,
            );
        }
        allowed
    }
}

impl WasiHttpHooks for OutgoingPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    hyper::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                )>,
            > + Send,
    > {
        if self.allows(request.uri()) {
            default_hooks().send_request(request, options, fut)
        } else {
            Box::new(async { Err(HttpError::HttpRequestDenied) })
        }
    }
}

/// Instantiation times of the requests served so far.
#[derive(Default)]
pub struct InstantiationStats {
    count: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl InstantiationStats {
    pub fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// `instances N, instantiation mean X us, max Y us`.
    pub fn summary(&self) -> String {
        let count = self.count.load(Ordering::Relaxed);
        let total = self.total_ns.load(Ordering::Relaxed);
        let mean_us = if count == 0 {
            0.0
        } else {
            total as f64 / count as f64 / 1000.0
        };
        let max_us = self.max_ns.load(Ordering::Relaxed) as f64 / 1000.0;
        format!("instances {count}, instantiation mean {mean_us:.1} us, max {max_us:.1} us")
    }
}

/// Serves requests with one instance each.
pub struct Handler {
    pre: ProxyPre<RequestState>,
    ctx: WasiContext,
    setup: InstanceSetup,
    /// One permit per instance the pool can hold at once.
    slots: Arc<Semaphore>,
    pub stats: InstantiationStats,
}

impl Handler {
    /// `slots`: one permit per instance the serving engine's pool holds, shared by every
    /// component it serves.
    pub fn new(
        pre: ProxyPre<RequestState>,
        ctx: &WasiContext,
        setup: InstanceSetup,
        slots: Arc<Semaphore>,
    ) -> Self {
        Self {
            pre,
            ctx: ctx.clone(),
            setup,
            slots,
            stats: InstantiationStats::default(),
        }
    }

    /// The guest's response, or a 500 (logged to the container's stderr) when it trapped or
    /// gave none.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>, Infallible> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let deadline = self.ctx.settings.request_deadline;
        match self.respond(request).await {
            Ok(response) => Ok(response),
            Err(e) => match deadline {
                Some(deadline) if limits::is_deadline(&e) => {
                    Ok(gateway_timeout(&method, &uri, deadline))
                }
                _ => Ok(internal_error(&method, &uri, &e)),
            },
        }
    }

    async fn respond(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> anyhow::Result<Response<HyperOutgoingBody>> {
        let slot = self.slots.clone().acquire_owned().await?;
        let mut store = RequestState::store(
            self.pre.engine(),
            RequestState::new(&self.ctx, &self.setup)?,
            self.ctx.settings.request_deadline,
        );
        let (sender, receiver) = oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let handler = self.clone();
        // The guest runs in its own task: it may go on streaming the body after it has
        // handed over the response head.
        let guest = tokio::spawn(async move {
            let _slot = slot;
            let started = Instant::now();
            let handled = async {
                let proxy = handler.pre.instantiate_async(&mut store).await?;
                handler.stats.record(started.elapsed());
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, incoming, outparam)
                    .await
            }
            .await;
            handled.map_err(|e| {
                let e = anyhow::Error::from(e);
                coredump::write_if_asked(&e, &mut store, &handler.ctx);
                e
            })
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => bail!("the component answered with the error {code:?}"),
            // The outparam was dropped unset: the guest's task says why.
            Err(_) => match guest.await {
                Ok(Ok(())) => bail!("the component returned without setting a response"),
                Ok(Err(trap)) => Err(trap),
                Err(join) => Err(anyhow!(join)),
            },
        }
    }
}

/// What a client gets when the guest gave no response within the request deadline: 504; why
/// goes to the container's stderr and the shim log.
pub fn gateway_timeout<E>(
    method: &Method,
    uri: &Uri,
    deadline: Duration,
) -> Response<UnsyncBoxBody<Bytes, E>> {
    eprintln!(
        "wasmtime-shim: {method} {uri}: answering 504: request deadline of {deadline:?} exceeded"
    );
    log::warn!("{method} {uri}: request deadline of {deadline:?} exceeded, answered 504");
    let body = Full::new(Bytes::from_static(
        b"gateway timeout: request deadline exceeded\n",
    ))
    .map_err(|never| match never {})
    .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    response
}

/// What a client gets when the guest gave no response: 500, as wasmtime serve answers; why
/// goes to the container's stderr. The body's error type is the server's (0.2 or 0.3).
pub fn internal_error<E>(
    method: &Method,
    uri: &Uri,
    why: &anyhow::Error,
) -> Response<UnsyncBoxBody<Bytes, E>> {
    let why = coredump::describe(why);
    eprintln!("wasmtime-shim: {method} {uri}: answering 500: {why}");
    log::warn!("{method} {uri}: answered 500: {why}");
    let body = Full::new(Bytes::from_static(b"internal server error\n"))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
