//! Reading the manifest's TOML into the types of [`super`], with Spin's checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::fields::{COMPONENT_ID, Fields, SNAKE_LABEL, VARIABLE_NAME, id_error, type_name};
use super::*;
use crate::routes;

/// The whole manifest (see [`super::parse`]).
pub(super) fn manifest(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
    let doc: Table = text
        .parse()
        .map_err(|e| ManifestError::new(file, None, format!("not valid TOML: {e}")))?;
    from_table(&doc, file)
}

/// The manifest from its TOML tables (see [`super::from_table`]).
pub(super) fn from_table(doc: &Table, file: &Path) -> Result<Manifest, ManifestError> {
    let root = Fields {
        file,
        path: String::new(),
        table: doc,
    };
    check_version(&root)?;
    root.deny_unknown(&[
        "spin_manifest_version",
        "application",
        "variables",
        "trigger",
        "component",
    ])?;

    let (application, http_base) = parse_application(&root.required_table("application")?)?;

    let mut variables = BTreeMap::new();
    if let Some(vars) = root.table("variables")? {
        for name in vars.table.keys() {
            vars.check_id(name, name, VARIABLE_NAME)?;
            variables.insert(name.clone(), parse_variable(&vars.required_table(name)?)?);
        }
    }

    let mut components = BTreeMap::new();
    if let Some(declared) = root.table("component")? {
        for id in declared.table.keys() {
            declared.check_id(id, id, COMPONENT_ID)?;
            components.insert(
                id.clone(),
                parse_component(&declared.required_table(id)?, id)?,
            );
        }
    }

    let (http_triggers, other_triggers) = parse_triggers(&root, &mut components)?;

    Ok(Manifest {
        file: file.to_owned(),
        application,
        http_base,
        variables,
        http_triggers,
        other_triggers,
        components,
    })
}

/// `spin_manifest_version` must be the integer 2. Checked before anything else, so that a
/// version 1 manifest gets this error rather than one about its fields.
fn check_version(root: &Fields) -> Result<(), ManifestError> {
    const ONLY: &str = "containerd-shim-spin supports only `spin_manifest_version = 2`";
    // Version 1 manifests could also say `spin_version = "1"`.
    let (key, value) = match (
        root.table.get("spin_manifest_version"),
        root.table.get("spin_version"),
    ) {
        (Some(v), _) => ("spin_manifest_version", v),
        (None, Some(v)) => ("spin_version", v),
        (None, None) => {
            return Err(root.error_at("spin_manifest_version", format!("missing; {ONLY}")));
        }
    };
    match value {
        Value::Integer(2) if key == "spin_manifest_version" => Ok(()),
        Value::Integer(1) => Err(root.error_at(key, format!("version 1 manifest; {ONLY}"))),
        Value::String(s) if s == "1" => {
            Err(root.error_at(key, format!("version 1 manifest; {ONLY}")))
        }
        other => Err(root.error_at(key, format!("unsupported version {other}; {ONLY}"))),
    }
}

fn parse_application(app: &Fields) -> Result<(Application, String), ManifestError> {
    app.deny_unknown(&[
        "name",
        "version",
        "description",
        "authors",
        "targets",
        "trigger",
        "tool",
    ])?;
    let application = Application {
        name: app.required_string("name")?,
        version: app.string("version")?.unwrap_or_default(),
        description: app.string("description")?.unwrap_or_default(),
        authors: app.strings("authors")?,
    };
    let mut base = "/".to_owned();
    if let Some(trigger_settings) = app.table("trigger")?
        && let Some(http) = trigger_settings.table("http")?
    {
        // Spin's HTTP trigger reads only `base` here and refuses anything else.
        http.deny_unknown(&["base"])?;
        if let Some(b) = http.string("base")? {
            routes::validate_base(&b).map_err(|e| http.error_at("base", e.to_string()))?;
            base = b;
        }
    }
    Ok((application, base))
}

fn parse_variable(var: &Fields) -> Result<Variable, ManifestError> {
    var.deny_unknown(&["description", "required", "default", "secret"])?;
    let required = var.bool("required")?.unwrap_or(false);
    let default = var.string("default")?;
    // Spin's loader: "must be `required` OR have a `default`".
    match (required, &default) {
        (true, Some(_)) => {
            return Err(var.error("has both `required = true` and a `default`: give one"));
        }
        (false, None) => {
            return Err(var.error("needs `required = true` or a `default`"));
        }
        _ => {}
    }
    Ok(Variable {
        default,
        secret: var.bool("secret")?.unwrap_or(false),
        description: var.string("description")?,
    })
}

fn parse_component(c: &Fields, id: &str) -> Result<Component, ManifestError> {
    c.deny_unknown(&[
        "source",
        "description",
        "variables",
        "environment",
        "files",
        "exclude_files",
        "allowed_http_hosts",
        "allowed_outbound_hosts",
        "key_value_stores",
        "sqlite_databases",
        "ai_models",
        "targets",
        "build",
        "tool",
        "profile",
        "dependencies_inherit_configuration",
        "dependencies",
    ])?;
    // The one field every component needs, reported before any other.
    let source = parse_source(c)?;
    if !c.strings("allowed_http_hosts")?.is_empty() {
        return Err(c.error_at(
            "allowed_http_hosts",
            "this deprecated field is not supported by containerd-shim-spin: \
             use `allowed_outbound_hosts` (e.g. \"https://example.com\")",
        ));
    }
    if c.table("dependencies")?
        .is_some_and(|d| !d.table.is_empty())
    {
        return Err(c.error_at(
            "dependencies",
            "component dependencies (composing components) are not supported by \
             containerd-shim-spin",
        ));
    }

    let mut files = Vec::new();
    for (i, entry) in c.array("files")?.iter().enumerate() {
        let path = format!("{}[{i}]", c.path_of("files"));
        files.push(parse_file_mount(c.file, path, entry)?);
    }

    let mut variables = BTreeMap::new();
    if let Some(vars) = c.table("variables")? {
        for name in vars.table.keys() {
            vars.check_id(name, name, VARIABLE_NAME)?;
            variables.insert(name.clone(), vars.required_string(name)?);
        }
    }

    let mut environment = BTreeMap::new();
    if let Some(env) = c.table("environment")? {
        for name in env.table.keys() {
            environment.insert(name.clone(), env.required_string(name)?);
        }
    }

    Ok(Component {
        id: id.to_owned(),
        description: c.string("description")?.unwrap_or_default(),
        source,
        files,
        exclude_files: c.strings("exclude_files")?,
        environment,
        allowed_outbound_hosts: c.strings("allowed_outbound_hosts")?,
        variables,
        key_value_stores: labels(c, "key_value_stores")?,
        sqlite_databases: labels(c, "sqlite_databases")?,
        ai_models: c.strings("ai_models")?,
    })
}

fn parse_source(c: &Fields) -> Result<ComponentSource, ManifestError> {
    match c.table.get("source") {
        None => Err(c.error_at("source", "missing")),
        Some(Value::String(path)) if path.is_empty() => {
            Err(c.error_at("source", "empty: give the path of a .wasm file"))
        }
        Some(Value::String(path)) => Ok(ComponentSource::Local(PathBuf::from(path))),
        Some(Value::Table(_)) => {
            let s = c.required_table("source")?;
            if s.table.contains_key("url") {
                s.deny_unknown(&["url", "digest"])?;
                let digest = s.required_string("digest")?;
                // Spin's loader: "invalid `digest` ...; must start with 'sha256:'".
                if !digest.starts_with("sha256:") {
                    return Err(
                        s.error_at("digest", format!("{digest:?} must start with \"sha256:\""))
                    );
                }
                Ok(ComponentSource::Remote {
                    url: s.required_string("url")?,
                    digest,
                })
            } else if s.table.contains_key("package") {
                s.deny_unknown(&["registry", "package", "version"])?;
                Ok(ComponentSource::Registry {
                    registry: s.string("registry")?,
                    package: s.required_string("package")?,
                    version: s.required_string("version")?,
                })
            } else {
                Err(s.error(
                    "expected { url = \"...\", digest = \"sha256:...\" } or \
                     { registry = \"...\", package = \"...\", version = \"...\" }",
                ))
            }
        }
        Some(other) => Err(c.error_at(
            "source",
            format!(
                "expected a path string or a table, found {}",
                type_name(other)
            ),
        )),
    }
}

fn parse_file_mount(file: &Path, path: String, entry: &Value) -> Result<FileMount, ManifestError> {
    match entry {
        Value::String(pattern) => {
            // Spin's loader refuses these: a directory needs the { source, destination }
            // form or a glob ending in `**/*`.
            if pattern == ".."
                || pattern.ends_with("/..")
                || pattern == "."
                || pattern.ends_with("/.")
            {
                return Err(ManifestError::new(
                    file,
                    Some(path),
                    format!(
                        "{pattern:?} ends in a directory; use {{ source = \"...\", \
                         destination = \"/...\" }} or a glob ending in \"**/*\""
                    ),
                ));
            }
            Ok(FileMount::Pattern(pattern.clone()))
        }
        Value::Table(table) => {
            let f = Fields { file, path, table };
            f.deny_unknown(&["source", "destination"])?;
            Ok(FileMount::Placement {
                source: f.required_string("source")?,
                destination: f.required_string("destination")?,
            })
        }
        other => Err(ManifestError::new(
            file,
            Some(path),
            format!(
                "expected a path or glob string, or {{ source, destination }}, found {}",
                type_name(other)
            ),
        )),
    }
}

/// Store and database labels: kebab-case or snake_case, as Spin requires.
fn labels(c: &Fields, key: &str) -> Result<Vec<String>, ManifestError> {
    let labels = c.strings(key)?;
    for (i, label) in labels.iter().enumerate() {
        if id_error(label, COMPONENT_ID).is_some() && id_error(label, SNAKE_LABEL).is_some() {
            return Err(ManifestError::new(
                c.file,
                Some(format!("{}[{i}]", c.path_of(key))),
                format!("{label:?} is not a kebab-case or snake_case label"),
            ));
        }
    }
    Ok(labels)
}

/// A trigger's `component` before inline components have ids.
enum ComponentSpec<'a> {
    Reference(String),
    Inline(&'a Table),
}

struct RawTrigger<'a> {
    trigger_type: String,
    index: usize,
    fields: Fields<'a>,
    id: String,
    component: Option<ComponentSpec<'a>>,
}

fn parse_triggers(
    root: &Fields,
    components: &mut BTreeMap<String, Component>,
) -> Result<(Vec<HttpTrigger>, Vec<OtherTrigger>), ManifestError> {
    // Spin requires the `trigger` table.
    let triggers = root.required_table("trigger")?;
    let mut raw = Vec::new();
    // Trigger types in key order, not file order: the order only changes the fallback
    // `inline-component<N>` names when inline components of several types need them.
    for trigger_type in triggers.table.keys() {
        let Some(Value::Array(list)) = triggers.table.get(trigger_type) else {
            return Err(triggers.error_at(
                trigger_type,
                format!("expected an array of tables: write [[trigger.{trigger_type}]]"),
            ));
        };
        for (index, value) in list.iter().enumerate() {
            let path = format!("{}[{index}]", triggers.path_of(trigger_type));
            let Value::Table(table) = value else {
                return Err(ManifestError::new(
                    root.file,
                    Some(path),
                    format!("expected a table, found {}", type_name(value)),
                ));
            };
            let fields = Fields {
                file: root.file,
                path,
                table,
            };
            let id = fields.string("id")?.unwrap_or_default();
            let component = match fields.table.get("component") {
                None => None,
                Some(Value::String(id)) => {
                    fields.check_id("component", id, COMPONENT_ID)?;
                    Some(ComponentSpec::Reference(id.clone()))
                }
                Some(Value::Table(inline)) => Some(ComponentSpec::Inline(inline)),
                Some(other) => {
                    return Err(fields.error_at(
                        "component",
                        format!(
                            "expected a component id or an inline component table, found {}",
                            type_name(other)
                        ),
                    ));
                }
            };
            raw.push(RawTrigger {
                trigger_type: trigger_type.clone(),
                index,
                fields,
                id,
                component,
            });
        }
    }

    assign_trigger_ids(&mut raw);

    // As Spin's normalization: every inline component gets its id and joins the
    // components before any reference is looked up.
    for trigger in &mut raw {
        if let Some(ComponentSpec::Inline(table)) = trigger.component {
            let id = inline_component_id(&trigger.id, components);
            let fields = Fields {
                file: root.file,
                path: trigger.fields.path_of("component"),
                table,
            };
            components.insert(id.clone(), parse_component(&fields, &id)?);
            trigger.component = Some(ComponentSpec::Reference(id));
        }
    }

    let mut http = Vec::new();
    let mut other = Vec::new();
    for trigger in raw {
        let component = match trigger.component {
            Some(ComponentSpec::Reference(id)) if !components.contains_key(&id) => {
                return Err(trigger
                    .fields
                    .error_at("component", format!("unknown component {id:?}")));
            }
            Some(ComponentSpec::Reference(id)) => Some(id),
            Some(ComponentSpec::Inline(_)) => unreachable!("inline components have ids by now"),
            None => None,
        };
        if trigger.trigger_type == "http" {
            http.push(parse_http_trigger(
                &trigger.fields,
                trigger.index,
                trigger.id,
                component,
            )?);
        } else {
            other.push(OtherTrigger {
                trigger_type: trigger.trigger_type,
                index: trigger.index,
                id: trigger.id,
                component,
            });
        }
    }
    Ok((http, other))
}

/// Spin's ids for triggers without one: `<component>-<type>-trigger` when the trigger
/// names a component and that id is free, else `<type>-trigger<N>` with the first free N.
fn assign_trigger_ids(triggers: &mut [RawTrigger]) {
    let mut taken: HashSet<String> = triggers.iter().map(|t| t.id.clone()).collect();
    // Spin counts per trigger type.
    let mut counters: HashMap<String, usize> = HashMap::new();
    for trigger in triggers.iter_mut().filter(|t| t.id.is_empty()) {
        let trigger_type = &trigger.trigger_type;
        if let Some(ComponentSpec::Reference(component)) = &trigger.component {
            let natural = format!("{component}-{trigger_type}-trigger");
            if taken.insert(natural.clone()) {
                trigger.id = natural;
                continue;
            }
        }
        let counter = counters.entry(trigger_type.clone()).or_insert(1);
        while taken.contains(&format!("{trigger_type}-trigger{counter}")) {
            *counter += 1;
        }
        let id = format!("{trigger_type}-trigger{counter}");
        taken.insert(id.clone());
        trigger.id = id;
    }
}

/// Spin's id for an inline component: `<trigger id>-component`, or `inline-component<N>`
/// with the first free N when that is not a valid id or is taken.
fn inline_component_id(trigger_id: &str, components: &BTreeMap<String, Component>) -> String {
    let natural = format!("{trigger_id}-component");
    if id_error(&natural, COMPONENT_ID).is_none() && !components.contains_key(&natural) {
        return natural;
    }
    (1..)
        .map(|n| format!("inline-component{n}"))
        .find(|id| !components.contains_key(id))
        .expect("some inline-component<N> is free")
}

fn parse_http_trigger(
    t: &Fields,
    index: usize,
    id: String,
    component: Option<String>,
) -> Result<HttpTrigger, ManifestError> {
    for unsupported in ["components", "dependencies"] {
        if t.table.contains_key(unsupported) {
            return Err(t.error_at(
                unsupported,
                "not supported by containerd-shim-spin for HTTP triggers",
            ));
        }
    }
    t.deny_unknown(&["id", "component", "route", "executor", "static_response"])?;

    let route = match t.table.get("route") {
        None => return Err(t.error_at("route", "missing")),
        Some(Value::String(route)) => {
            routes::validate_route(route).map_err(|e| t.error_at("route", e.to_string()))?;
            HttpRoute::Path(route.clone())
        }
        Some(Value::Table(_)) => {
            let private = t.required_table("route")?;
            private.deny_unknown(&["private"])?;
            match private.bool("private")? {
                Some(true) => HttpRoute::Private,
                _ => {
                    return Err(
                        t.error_at("route", "must be a route pattern or { private = true }")
                    );
                }
            }
        }
        Some(other) => {
            return Err(t.error_at(
                "route",
                format!(
                    "expected a route pattern or {{ private = true }}, found {}",
                    type_name(other)
                ),
            ));
        }
    };

    let static_response = t.table("static_response")?;
    let handler = match (component, static_response) {
        (Some(id), None) => HttpHandler::Component(id),
        (None, Some(response)) => HttpHandler::StaticResponse(parse_static_response(&response)?),
        (None, None) => {
            return Err(t.error_at(
                "component",
                "missing: give a component or a static_response",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(t.error_at(
                "static_response",
                "a trigger has a component or a static_response, not both",
            ));
        }
    };

    let executor = match t.table("executor")? {
        None => HttpExecutor::Http,
        Some(e) => match e.required_string("type")?.as_str() {
            "http" | "spin" => {
                e.deny_unknown(&["type"])?;
                HttpExecutor::Http
            }
            "wagi" => {
                e.deny_unknown(&["type", "argv", "entrypoint"])?;
                HttpExecutor::Wagi {
                    argv: e
                        .string("argv")?
                        .unwrap_or_else(|| "${SCRIPT_NAME} ${ARGS}".to_owned()),
                    entrypoint: e
                        .string("entrypoint")?
                        .unwrap_or_else(|| "_start".to_owned()),
                }
            }
            other => {
                return Err(e.error_at(
                    "type",
                    format!("unknown executor {other:?}: expected \"http\" or \"wagi\""),
                ));
            }
        },
    };

    Ok(HttpTrigger {
        index,
        id,
        route,
        handler,
        executor,
    })
}

fn parse_static_response(r: &Fields) -> Result<StaticResponse, ManifestError> {
    // Spin ignores unknown fields here (its struct does not deny them), and so do we.
    let status = match r.table.get("status_code") {
        None => 200,
        Some(Value::Integer(code)) if (100..=999).contains(code) => *code as u16,
        Some(other) => {
            return Err(r.error_at(
                "status_code",
                format!("expected an HTTP status from 100 to 999, found {other}"),
            ));
        }
    };
    let mut headers = BTreeMap::new();
    if let Some(h) = r.table("headers")? {
        for name in h.table.keys() {
            headers.insert(name.clone(), h.required_string(name)?);
        }
    }
    Ok(StaticResponse {
        status,
        headers,
        body: r.string("body")?,
    })
}
