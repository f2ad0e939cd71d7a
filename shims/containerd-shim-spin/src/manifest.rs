//! `spin.toml`, manifest version 2, read into what containerd-shim-spin runs.
//!
//! Follows Spin's `spin-manifest` crate (schema v2, its normalization of trigger and
//! inline component ids) and the checks Spin's loader and HTTP trigger make before
//! running an app. Like Spin, it refuses fields it does not know. Every error names the
//! manifest file and the field, e.g. `spin.toml: trigger.http[1].component: unknown
//! component "foo"`.
//!
//! What this shim does not do is refused here with a message saying so, rather than
//! ignored: component `dependencies` (composition), the deprecated `allowed_http_hosts`,
//! and a trigger's `components` or `dependencies`. Other trigger types than `http` are
//! read (see [`Manifest::other_triggers`]) so the caller can refuse them by name.
//! Build settings (`build`), `profile`s, `tool` and `targets` tables are ignored, as
//! `spin up` without `--profile` ignores them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A manifest that cannot be read, with where: the file and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    file: PathBuf,
    field: Option<String>,
    message: String,
}

impl ManifestError {
    pub(crate) fn new(file: &Path, field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            field,
            message: message.into(),
        }
    }

    /// The manifest file, as given to [`parse`] or [`load`].
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The field at fault as a TOML path (`trigger.http[0].route`), if it is one field.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// What is wrong, without the file and field.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

/// A Spin application manifest (`spin.toml`, version 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    file: PathBuf,
    application: Application,
    http_base: String,
    variables: BTreeMap<String, Variable>,
    http_triggers: Vec<HttpTrigger>,
    other_triggers: Vec<OtherTrigger>,
    components: BTreeMap<String, Component>,
}

/// `[application]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    name: String,
    version: String,
    description: String,
    authors: Vec<String>,
}

/// An application variable (`[variables]`): it has a default, or a value must be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    default: Option<String>,
    secret: bool,
    description: Option<String>,
}

/// A `[[trigger.http]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    index: usize,
    id: String,
    route: HttpRoute,
    handler: HttpHandler,
    executor: HttpExecutor,
}

/// Where an HTTP trigger is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// A route pattern, as written (valid: see [`crate::routes::validate_route`]).
    Path(String),
    /// `route = { private = true }`: reachable only from other components.
    Private,
}

impl HttpRoute {
    /// The route pattern, or `None` for a private endpoint.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Path(path) => Some(path),
            Self::Private => None,
        }
    }
}

/// What answers an HTTP trigger's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpHandler {
    /// The id of a component of [`Manifest::components`] (an inline component included).
    Component(String),
    /// `static_response`: the host answers without running a component.
    StaticResponse(StaticResponse),
}

/// A fixed answer to an HTTP trigger's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Option<String>,
}

/// How an HTTP component is called (`executor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpExecutor {
    /// `{ type = "http" }` (or `"spin"`, or no executor): the component exports an HTTP
    /// handler interface.
    Http,
    /// `{ type = "wagi" }`: a command run CGI-style (deprecated in Spin).
    Wagi {
        /// The arguments template; Spin's default is `${SCRIPT_NAME} ${ARGS}`.
        argv: String,
        /// The entry point; Spin's default is `_start`.
        entrypoint: String,
    },
}

/// A trigger of another type than `http` (`[[trigger.redis]]` and the like).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherTrigger {
    trigger_type: String,
    index: usize,
    id: String,
    component: Option<String>,
}

/// A component: `[component.<id>]`, or inline in a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    id: String,
    description: String,
    source: ComponentSource,
    files: Vec<FileMount>,
    exclude_files: Vec<String>,
    environment: BTreeMap<String, String>,
    allowed_outbound_hosts: Vec<String>,
    variables: BTreeMap<String, String>,
    key_value_stores: Vec<String>,
    sqlite_databases: Vec<String>,
    ai_models: Vec<String>,
}

/// Where a component's Wasm comes from (`source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A file, as written: relative to the manifest's directory unless absolute (see
    /// [`Manifest::resolve`]).
    Local(PathBuf),
    /// `{ url, digest }`: downloaded, and checked against `digest` (`sha256:<hex>`).
    Remote {
        /// Where to download it from.
        url: String,
        /// `sha256:` and the hex SHA-256 of the file.
        digest: String,
    },
    /// `{ registry, package, version }`: a package from a Wasm registry.
    Registry {
        /// The registry, or `None` for the default one.
        registry: Option<String>,
        /// The package name (`namespace:name`).
        package: String,
        /// The package version.
        version: String,
    },
}

/// A `files` entry: what the component may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A path or glob pattern relative to the manifest's directory, mounted at the same
    /// relative path under the guest's `/`.
    Pattern(String),
    /// `{ source, destination }`: a host directory or file mounted at a guest path.
    Placement {
        /// The host path, relative to the manifest's directory.
        source: String,
        /// The guest path.
        destination: String,
    },
}

/// Reads a manifest file (see [`parse`]).
pub fn load(file: &Path) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ManifestError::new(file, None, format!("cannot read it: {e}")))?;
    parse(&text, file)
}

/// Reads a manifest from its text; `file` is where it came from, for error messages and
/// for the directory local paths are relative to.
pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
    read::manifest(text, file)
}

/// Reads a manifest from the tables a `spin.toml` would have (what [`crate::locked`] makes
/// of a locked app), with the same checks as [`parse`]; `file` is where they came from.
pub(crate) fn from_table(table: &toml::Table, file: &Path) -> Result<Manifest, ManifestError> {
    read::from_table(table, file)
}

impl Manifest {
    /// The manifest file, as given.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The directory the manifest's relative paths are relative to.
    pub fn app_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }

    /// A path from the manifest (a local `source`, a `files` entry) on the host.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        self.app_dir().join(path)
    }

    /// `[application]`.
    pub fn application(&self) -> &Application {
        &self.application
    }

    /// `[application.trigger.http] base`, `"/"` when not set. Spin 3 refuses any other
    /// value (routes must include the base themselves); Spin 2 put it before every route.
    pub fn http_base(&self) -> &str {
        &self.http_base
    }

    /// The application variables, by name.
    pub fn variables(&self) -> &BTreeMap<String, Variable> {
        &self.variables
    }

    /// The `[[trigger.http]]`s, in manifest order.
    pub fn http_triggers(&self) -> &[HttpTrigger] {
        &self.http_triggers
    }

    /// The triggers of other types, by type and then in manifest order.
    pub fn other_triggers(&self) -> &[OtherTrigger] {
        &self.other_triggers
    }

    /// Fails naming the trigger types other than `http`, if there are any.
    pub fn check_http_only(&self) -> Result<(), ManifestError> {
        let mut types: Vec<&str> = self
            .other_triggers
            .iter()
            .map(|t| t.trigger_type.as_str())
            .collect();
        types.dedup();
        let Some(first) = types.first() else {
            return Ok(());
        };
        let listed = types
            .iter()
            .map(|t| format!("{t:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (noun, verb) = if types.len() == 1 {
            ("type", "is")
        } else {
            ("types", "are")
        };
        Err(ManifestError::new(
            &self.file,
            Some(fields::key_path("trigger", first)),
            format!(
                "trigger {noun} {listed} {verb} not supported: containerd-shim-spin runs HTTP triggers only"
            ),
        ))
    }

    /// The components by id, those written inline in triggers included.
    pub fn components(&self) -> &BTreeMap<String, Component> {
        &self.components
    }

    /// One component.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.get(id)
    }
}

impl Application {
    /// `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `version`, empty when not set.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `description`, empty when not set.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// `authors`.
    pub fn authors(&self) -> &[String] {
        &self.authors
    }
}

impl Variable {
    /// The default value; `None` when the variable is required.
    pub fn default(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// Whether a value must be given at run time (it has no default).
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// Whether the value is sensitive (`secret = true`).
    pub fn is_secret(&self) -> bool {
        self.secret
    }

    /// `description`.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
}

impl HttpTrigger {
    /// The trigger's place among the `[[trigger.http]]`s, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The trigger's `id`, or the one Spin generates (`<component>-http-trigger`, or
    /// `http-trigger<N>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `route`.
    pub fn route(&self) -> &HttpRoute {
        &self.route
    }

    /// What answers the requests.
    pub fn handler(&self) -> &HttpHandler {
        &self.handler
    }

    /// The component id, unless the trigger has a static response.
    pub fn component(&self) -> Option<&str> {
        match &self.handler {
            HttpHandler::Component(id) => Some(id),
            HttpHandler::StaticResponse(_) => None,
        }
    }

    /// `executor`.
    pub fn executor(&self) -> &HttpExecutor {
        &self.executor
    }
}

impl StaticResponse {
    /// `status_code`, 200 when not set.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// `headers`.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// `body`.
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

impl OtherTrigger {
    /// The trigger type (`redis`, `mqtt`, …).
    pub fn trigger_type(&self) -> &str {
        &self.trigger_type
    }

    /// The trigger's place among those of its type, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The trigger's `id`, or the one Spin generates.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The component id, if the trigger names one.
    pub fn component(&self) -> Option<&str> {
        self.component.as_deref()
    }
}

impl Component {
    /// The component's id (generated for an inline component, as Spin does).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `description`, empty when not set.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// `source`.
    pub fn source(&self) -> &ComponentSource {
        &self.source
    }

    /// `files`, as written.
    pub fn files(&self) -> &[FileMount] {
        &self.files
    }

    /// `exclude_files`: patterns of files not to mount even though `files` matches them.
    pub fn exclude_files(&self) -> &[String] {
        &self.exclude_files
    }

    /// `environment`.
    pub fn environment(&self) -> &BTreeMap<String, String> {
        &self.environment
    }

    /// `allowed_outbound_hosts`, as written (templates such as `{{ host }}` included).
    pub fn allowed_outbound_hosts(&self) -> &[String] {
        &self.allowed_outbound_hosts
    }

    /// `variables`: the component's configuration, values as written (templates that may
    /// refer to application variables with `{{ name }}`).
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }

    /// `key_value_stores`: the labels of the stores the component may use.
    pub fn key_value_stores(&self) -> &[String] {
        &self.key_value_stores
    }

    /// `sqlite_databases`: the labels of the databases the component may use.
    pub fn sqlite_databases(&self) -> &[String] {
        &self.sqlite_databases
    }

    /// `ai_models`: the models the component may use.
    pub fn ai_models(&self) -> &[String] {
        &self.ai_models
    }
}

mod fields;
mod read;

#[cfg(test)]
mod tests;
