//! Spin's HTTP trigger: the wasmtime shim's HTTP server, each request routed by the
//! application's routes to its component (a fresh instance per request, as Spin gives), with
//! Spin's `spin-*` request headers; 404 when no route matches.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use containerd_shim_wasm::{ContainerSettings, EngineConfig, WasiContext};
use containerd_shim_wasmtime::http::settings::Settings;
use containerd_shim_wasmtime::http::{InstanceSetup, Responder, ResponseBody, Serving, server};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::app::App;
use crate::host::runtime_config::{RUNTIME_CONFIG, RuntimeConfig, Stores};
use crate::host::{ComponentHost, variables};
use crate::manifest::StaticResponse;
use crate::routes::{self, Router};

/// Where Spin listens, and where containerd-shim-spin does unless told otherwise.
pub const LISTEN_ADDR_ENV: &str = "SPIN_HTTP_LISTEN_ADDR";
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:80";

/// Serves `app` until SIGTERM/SIGINT; 0 once in-flight requests have finished. An application
/// that cannot start (a required variable without value, a store that cannot be opened) ends
/// with 1, why on the container's stderr, where `ctr`, `docker logs` and `kubectl logs` show it.
pub fn serve(app: &App, ctx: &WasiContext, options: &EngineConfig) -> anyhow::Result<i32> {
    let (settings, serving, router, responders) = match prepare(app, ctx, options) {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("spin-shim: application {:?} cannot start: {e:#}", app.name);
            log::error!("application {:?} cannot start: {e:#}", app.name);
            return Ok(1);
        }
    };
    let routes: Vec<String> = router
        .routes()
        .map(|(route, component)| format!("{route} -> {component}"))
        .collect();
    eprintln!(
        "spin-shim: application {:?}: {}",
        app.name,
        routes.join(", ")
    );
    let trigger = Arc::new(Trigger {
        router,
        responders,
        static_responses: app.static_responses.clone(),
    });
    let serving_trigger = trigger.clone();
    server::run(
        move |request, client| {
            let trigger = serving_trigger.clone();
            async move { Ok::<_, Infallible>(trigger.respond(request, client).await) }
        },
        &settings,
    )?;
    for (id, responder) in &trigger.responders {
        eprintln!(
            "spin-shim: component {id}: {:?} allocator; {}",
            serving.allocator,
            responder.summary()
        );
    }
    Ok(0)
}

type Prepared = (Settings, Serving, Router, BTreeMap<String, Responder>);

/// The server's settings, the routes of the components retained, and each component's
/// responder, its host state made from the container's environment and `/runtime-config.toml`.
fn prepare(app: &App, ctx: &WasiContext, options: &EngineConfig) -> anyhow::Result<Prepared> {
    if ctx.settings.allowed_outbound_hosts.is_some() {
        bail!(
            "{}: a Spin app's outbound hosts are each component's allowed_outbound_hosts in its \
             manifest, not the container's list",
            containerd_shim_wasm::config::ALLOWED_OUTBOUND_HOSTS_ANNOTATION
        );
    }
    let settings = Settings::read(
        &ctx.env,
        &ctx.annotations,
        LISTEN_ADDR_ENV,
        DEFAULT_LISTEN_ADDR,
    )?;
    let serving = Serving::new(options)?;
    // Read here, in the container, so that the file and the stores may be on volumes.
    let runtime_config = RuntimeConfig::read(Path::new(RUNTIME_CONFIG))?;
    let mut stores = Stores::default();
    let values = variables::app_values(&app.variables, &ctx.env)?;
    let retained = retained_components(app, &ctx.env)?;
    let router = match &retained {
        None => app.router.clone(),
        Some(retained) => Router::new(
            app.router.base(),
            app.router.routes().filter(|(_, target)| {
                retained.contains(*target) || app.static_responses.contains_key(*target)
            }),
        )?,
    };
    let mut responders = BTreeMap::new();
    for (id, component) in &app.components {
        if retained
            .as_ref()
            .is_some_and(|retained| !retained.contains(id))
        {
            continue;
        }
        // Refusals name the component and the container (the shim log holds every
        // container's).
        let name = format!("component {id:?} of container {}", app.container);
        // A Spin component sees its manifest's `environment`, not the container's; its
        // `files`; and no network but its allowed outbound hosts.
        let component_ctx = WasiContext {
            args: vec![id.clone()],
            env: component.environment.clone(),
            preopens: component.files.clone(),
            entry: ctx.entry.clone(),
            network: false,
            container: ctx.container.clone(),
            // The component's own allowed outbound hosts apply (below), not the container's.
            settings: ContainerSettings {
                allowed_outbound_hosts: None,
                ..ctx.settings.clone()
            },
            annotations: ctx.annotations.clone(),
        };
        let host = ComponentHost {
            variables: variables::component_values(&component.variables, &values)
                .with_context(|| format!("{name}: variables"))?,
            stores: component
                .key_value_stores
                .iter()
                .map(|label| Ok((label.clone(), stores.open(&runtime_config, label)?)))
                .collect::<anyhow::Result<_>>()
                .with_context(|| format!("{name}: key_value_stores"))?,
        };
        let setup = InstanceSetup {
            allowed_hosts: Some(Arc::new(component.allowed_hosts.clone())),
            host_data: Some(Arc::new(host).host_data()),
            name,
        };
        let responder =
            serving.responder(&component.server, &component_ctx, setup, settings.reuse)?;
        responders.insert(id.clone(), responder);
    }
    Ok((settings, serving, router, responders))
}

/// SpinKube's selective deployment: spin-operator sets it to the components a SpinApp's
/// `components` names (comma-separated); the others are neither loaded into the server nor
/// routed to.
pub const COMPONENTS_TO_RETAIN_ENV: &str = "SPIN_COMPONENTS_TO_RETAIN";

/// The components [`COMPONENTS_TO_RETAIN_ENV`] retains (`None`: all); one the application's
/// HTTP triggers do not serve is an error.
fn retained_components(
    app: &App,
    env: &[(String, String)],
) -> anyhow::Result<Option<BTreeSet<String>>> {
    let Some((_, value)) = env
        .iter()
        .rev()
        .find(|(name, _)| name == COMPONENTS_TO_RETAIN_ENV)
    else {
        return Ok(None);
    };
    let retained: BTreeSet<String> = value
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = retained.iter().find(|id| !app.components.contains_key(*id)) {
        anyhow::bail!(
            "{COMPONENTS_TO_RETAIN_ENV}={value}: {unknown:?} is no component that the \
             application's HTTP triggers serve (they serve: {})",
            app.components
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Some(retained))
}

struct Trigger {
    router: Router,
    responders: BTreeMap<String, Responder>,
    static_responses: BTreeMap<String, StaticResponse>,
}

impl Trigger {
    async fn respond(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ResponseBody> {
        let Some(matched) = self.router.route(request.uri().path()) else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        if let Some(fixed) = self.static_responses.get(matched.component_id()) {
            return static_response(fixed);
        }
        let host = request
            .headers()
            .get(HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or("localhost");
        let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let url = routes::full_url("http", host, path_and_query);
        for (name, value) in routes::spin_headers(&matched, &url, client) {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                return plain(
                    StatusCode::BAD_REQUEST,
                    &format!("the request cannot be given the header {name}\n"),
                );
            };
            request.headers_mut().insert(name, value);
        }
        match self.responders.get(matched.component_id()) {
            Some(responder) => responder.respond(request).await,
            // app.rs loads every component a route names: this would be a bug here.
            None => {
                eprintln!(
                    "spin-shim: route {} names component {:?}, which was not loaded: answering 500",
                    matched.matched_route(),
                    matched.component_id()
                );
                plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n")
            }
        }
    }
}

/// A `static_response` trigger's answer: its status, headers and body (empty when unset).
fn static_response(fixed: &StaticResponse) -> Response<ResponseBody> {
    let mut response = plain(StatusCode::OK, fixed.body().unwrap_or_default());
    // The manifest reader checked the status is 100 to 999, which http accepts.
    *response.status_mut() = StatusCode::from_u16(fixed.status()).unwrap_or(StatusCode::OK);
    // Headers that are no valid HTTP header failed create (app.rs).
    for (name, value) in fixed.headers() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn plain(status: StatusCode, body: &str) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from(body.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}
