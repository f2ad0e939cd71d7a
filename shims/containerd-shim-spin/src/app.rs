//! A Spin application loaded at `create`: `/spin.toml` read and checked, its HTTP routes
//! built, and every component a route names compiled and linked (through the node's
//! precompile cache), so that anything wrong with the application fails `create` with the
//! file and the field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use containerd_shim_wasm::allowed_hosts::AllowedHosts;
use containerd_shim_wasm::{Preopen, cache, module_size};
use containerd_shim_wasmtime::engine::LinkedWasm;
use containerd_shim_wasmtime::http::HttpComponent;

use crate::engine::{SPIN_MANIFEST, SpinEngine, SpinModule};
use crate::files;
use crate::host::variables;
use crate::manifest::{
    self, ComponentSource, HttpExecutor, HttpHandler, HttpRoute, Manifest, StaticResponse, Variable,
};
use crate::routes::Router;

/// An application ready to serve.
pub struct App {
    pub name: String,
    /// The container's id, for messages.
    pub container: String,
    /// The application's `[variables]`, whose values the container's environment gives.
    pub variables: BTreeMap<String, Variable>,
    pub router: Router,
    /// The components the routes name, by id.
    pub components: BTreeMap<String, AppComponent>,
    /// The fixed answers of `static_response` triggers, by the target id their route has in
    /// [`App::router`] (see [`static_target`]).
    pub static_responses: BTreeMap<String, StaticResponse>,
}

/// The router's target for a `static_response` trigger: its trigger id behind a `:`, which no
/// component id has (component ids are kebab-case), so the two never meet.
pub fn static_target(trigger_id: &str) -> String {
    format!(":{trigger_id}")
}

/// A component of the application, compiled and linked.
pub struct AppComponent {
    pub server: HttpComponent,
    /// Its `environment` table: all the environment a Spin component sees.
    pub environment: Vec<(String, String)>,
    /// `allowed_outbound_hosts`: all the component may reach.
    pub allowed_hosts: AllowedHosts,
    /// `variables`: its variables' templates, by name.
    pub variables: BTreeMap<String, String>,
    /// `key_value_stores`: the labels of the stores it may open.
    pub key_value_stores: Vec<String>,
    /// `files`: what it sees of the image, read-only (see [`files`]).
    pub files: Vec<Preopen>,
}

/// Loads the application whose manifest is `file` (`/spin.toml` inside `rootfs`).
pub fn load(
    engine: &SpinEngine,
    rootfs: &Path,
    file: &Path,
    container: &str,
) -> anyhow::Result<App> {
    // `/spin.toml`, or the locked app of a Spin OCI artifact.
    let manifest = crate::locked::read_manifest(file, SPIN_MANIFEST)?;
    // `/spin.toml`, or the locked app of a Spin OCI artifact.
    let app_file = manifest.file().display();
    manifest.check_http_only()?;
    for name in manifest.variables().keys() {
        variables::check_name(name).map_err(|why| anyhow!("{app_file}: variables: {why}"))?;
    }
    let (routes, static_responses) = http_routes(&manifest)?;
    let router = Router::new(manifest.http_base(), routes.iter().cloned())
        .map_err(|e| anyhow!("{app_file}: {e}"))?;
    for duplicate in router.duplicates() {
        log::warn!(
            id = container;
            "container {container}: {app_file}: route {:?} of component {:?} is never used: \
             component {:?} has the same route",
            duplicate.route,
            duplicate.unused_component,
            duplicate.used_component
        );
    }
    let mut components = BTreeMap::new();
    for (_, id) in &routes {
        if components.contains_key(id) || static_responses.contains_key(id) {
            continue;
        }
        let component = manifest
            .component(id)
            .with_context(|| format!("{app_file}: no component {id:?}"))?;
        let loaded = load_component(engine, rootfs, &manifest, component, container)?;
        components.insert(id.clone(), loaded);
    }
    Ok(App {
        name: manifest.application().name().to_string(),
        container: container.to_string(),
        variables: manifest.variables().clone(),
        router,
        components,
        static_responses,
    })
}

/// Every public HTTP trigger's `(route, target)`, the target a component id or a static
/// response's [`static_target`], and those static responses.
type Routes = (Vec<(String, String)>, BTreeMap<String, StaticResponse>);

/// The [`Routes`] of the manifest, refusing what this shim does not serve.
fn http_routes(manifest: &Manifest) -> anyhow::Result<Routes> {
    let app_file = manifest.file().display();
    let mut routes = Vec::new();
    let mut static_responses = BTreeMap::new();
    for trigger in manifest.http_triggers() {
        let field = format!("trigger.http[{}]", trigger.index());
        if let HttpExecutor::Wagi { .. } = trigger.executor() {
            bail!(
                "{app_file}: {field}.executor: the wagi executor is not supported: this \
                 shim calls components that export a wasi:http handler"
            );
        }
        // A private endpoint is reached only by other components' local requests, which
        // this shim does not route: nothing to serve.
        let HttpRoute::Path(route) = trigger.route() else {
            continue;
        };
        match trigger.handler() {
            HttpHandler::Component(id) => routes.push((route.clone(), id.clone())),
            HttpHandler::StaticResponse(response) => {
                for (name, value) in response.headers() {
                    let valid = hyper::header::HeaderName::try_from(name.as_str()).is_ok()
                        && hyper::header::HeaderValue::try_from(value.as_str()).is_ok();
                    if !valid {
                        bail!(
                            "{app_file}: {field}.static_response.headers: {name:?} = \
                             {value:?} is not a valid HTTP header"
                        );
                    }
                }
                let target = static_target(trigger.id());
                routes.push((route.clone(), target.clone()));
                static_responses.insert(target, response.clone());
            }
        }
    }
    Ok((routes, static_responses))
}

/// Compiles one component and checks that it is an HTTP handler this shim can give what its
/// manifest entry asks for.
fn load_component(
    engine: &SpinEngine,
    rootfs: &Path,
    manifest: &Manifest,
    component: &manifest::Component,
    container: &str,
) -> anyhow::Result<AppComponent> {
    let id = component.id();
    let app_file = manifest.file().display();
    refuse_unsupported(manifest, component)?;
    // What the manifest entry asks for first: cheaper than compiling.
    let allowed_hosts = AllowedHosts::parse(component.allowed_outbound_hosts())
        .map_err(|e| anyhow!("{app_file}: component.{id}.allowed_outbound_hosts: {e}"))?;
    for (name, template) in component.variables() {
        variables::check_name(name)
            .and_then(|()| {
                variables::check_template(template, manifest.variables()).map_err(|e| e.to_string())
            })
            .map_err(|why| anyhow!("{app_file}: component.{id}.variables.{name}: {why}"))?;
    }
    let files = files::preopens(rootfs, manifest, id, component.files())?;
    let field = format!("component.{id}.source");
    let path = match component.source() {
        ComponentSource::Local(path) => manifest.resolve(path),
        ComponentSource::Remote { url, .. } => bail!(
            "{app_file}: {field}: {url}: components are read from the image; a URL \
             source is not fetched (put the file in the image, or `spin registry push` the app)"
        ),
        ComponentSource::Registry { package, .. } => bail!(
            "{app_file}: {field}: the registry package {package}: components are read \
             from the image; registry sources are not fetched"
        ),
    };
    let shown = path.display().to_string();
    // Symlinks in the image must not lead out of the rootfs.
    let host = safe_path::scoped_join(rootfs, &path)
        .with_context(|| format!("{app_file}: {field}: {shown}: resolve it in the rootfs"))?;
    let bytes =
        module_size::read_module(&host, &shown).with_context(|| format!("{app_file}: {field}"))?;
    let module = cache::compile(engine, &bytes, "_start", container)
        .with_context(|| format!("{app_file}: {field}: {shown}: component {id:?}"))?;
    let SpinModule::Wasm(LinkedWasm::HttpServer(server)) = module else {
        bail!(
            "{app_file}: {field}: {shown} exports no HTTP handler \
             (wasi:http/incoming-handler@0.2 or wasi:http/handler@0.3), which an HTTP trigger \
             calls"
        );
    };
    Ok(AppComponent {
        server,
        environment: component
            .environment()
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        allowed_hosts,
        variables: component.variables().clone(),
        key_value_stores: component.key_value_stores().to_vec(),
        files,
    })
}

/// What a component may ask for that this shim does not give yet: refused at create rather
/// than left out silently (the component would fail later, or reach what it should not).
fn refuse_unsupported(manifest: &Manifest, component: &manifest::Component) -> anyhow::Result<()> {
    let app_file = manifest.file().display();
    let id = component.id();
    let asked = [
        ("exclude_files", !component.exclude_files().is_empty()),
        ("sqlite_databases", !component.sqlite_databases().is_empty()),
        ("ai_models", !component.ai_models().is_empty()),
    ];
    if let Some((field, _)) = asked.iter().find(|(_, asked)| *asked) {
        bail!("{app_file}: component.{id}.{field}: not supported by this shim yet");
    }
    Ok(())
}
