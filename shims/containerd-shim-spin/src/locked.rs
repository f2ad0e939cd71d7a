//! The locked app of a Spin OCI artifact (`spin registry push`), read into the same
//! [`Manifest`] as `spin.toml`.
//!
//! The shim writes the locked app at [`LOCKED_APP`] and each component's files under
//! `/spin-assets/<component id>/` (see `containerd_shim_wasm::spin_artifact`); the components'
//! modules are at `/<sha256 hex>.wasm`. A locked app is what Spin's loader made of a
//! `spin.toml`, so this module turns it back into the tables of a version 2 manifest and reads
//! those with [`manifest::from_table`]: one set of checks for both forms.
//!
//! - `metadata`: `name`, `version`, `description`, `authors` are `[application]`; the HTTP
//!   trigger's `base` is in `metadata.triggers.http` (or, from older Spin, `metadata.trigger`).
//! - `variables`: a variable without `default` is required.
//! - `triggers[i]`: `trigger_config` is the `[[trigger.<trigger_type>]]` table, `id` its id.
//! - `components[i]`: `source.digest` names the module; `env` is `environment`, `config` is
//!   `variables`; `metadata.allowed_outbound_hosts`, `key_value_stores`, `databases` (the
//!   manifest's `sqlite_databases`) and `ai_models`; `files` become one directory mounted at
//!   the guest's `/`, as Spin mounts them.
//!
//! What a locked app says that the shim does not do (component dependencies, required host
//! features) is refused. Errors in the locked app's own shape name the locked app file and its
//! JSON field (`/spin.lock.json: components[0].source.digest: ...`); errors of the shared
//! checks name the file and the field of the equivalent `spin.toml`.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value as Json};
use toml::{Table, Value as Toml};

use crate::manifest::{self, Manifest, ManifestError};

/// Where the locked app is in the rootfs.
pub const LOCKED_APP: &str = "/spin.lock.json";

/// The directory of each component's files, relative to the rootfs' root.
const ASSETS_DIR: &str = containerd_shim_wasm::spin_artifact::ASSETS_DIR;

/// The application manifest in `file`: the locked app if `file` is [`LOCKED_APP`]'s name, else
/// a `spin.toml`. `file` is the host path; errors name the path in the container.
pub fn read_manifest(file: &Path, in_container: &str) -> anyhow::Result<Manifest> {
    let shown = if file.file_name() == Path::new(LOCKED_APP).file_name() {
        LOCKED_APP
    } else {
        in_container
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("{shown}: cannot read it"))?;
    if shown == LOCKED_APP {
        Ok(parse(&text, Path::new(LOCKED_APP))?)
    } else {
        Ok(manifest::parse(&text, Path::new(shown))?)
    }
}

/// Reads a locked app from its JSON text; `file` names it in errors, and local paths (the
/// modules, the files) are relative to its directory.
pub fn parse(text: &str, file: &Path) -> Result<Manifest, ManifestError> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| ManifestError::new(file, None, format!("not valid JSON: {e}")))?;
    let at = |field: &str, message: String| ManifestError::new(file, Some(field.into()), message);
    let root = json
        .as_object()
        .ok_or_else(|| ManifestError::new(file, None, "not a JSON object".to_string()))?;

    match root.get("spin_lock_version") {
        Some(Json::Number(n)) if n.as_u64().is_some_and(|v| v <= 1) => {}
        Some(other) => {
            return Err(at(
                "spin_lock_version",
                format!("unsupported version {other}: this shim reads versions 0 and 1"),
            ));
        }
        None => return Err(at("spin_lock_version", "missing".into())),
    }
    for (i, feature) in array(root, "must_understand", &at)?.iter().enumerate() {
        let known = ["host_requirements", "component_host_requirements"];
        if !feature.as_str().is_some_and(|f| known.contains(&f)) {
            return Err(at(
                &format!("must_understand[{i}]"),
                format!("{feature} is not understood by containerd-shim-spin"),
            ));
        }
    }
    check_host_requirements(root.get("host_requirements"), "host_requirements", &at)?;

    let mut doc = Table::new();
    doc.insert("spin_manifest_version".into(), Toml::Integer(2));
    doc.insert("application".into(), Toml::Table(application(root, &at)?));

    let mut variables = Table::new();
    for (name, variable) in object(root, "variables", &at)? {
        let field = format!("variables.{name}");
        let variable = variable
            .as_object()
            .ok_or_else(|| at(&field, "expected an object".into()))?;
        let mut table = Table::new();
        for (key, value) in variable {
            match key.as_str() {
                "default" | "description" | "secret" => {
                    table.insert(key.clone(), toml(value, &format!("{field}.{key}"), &at)?);
                }
                _ => {}
            }
        }
        if !table.contains_key("default") {
            table.insert("required".into(), Toml::Boolean(true));
        }
        variables.insert(name.clone(), Toml::Table(table));
    }
    if !variables.is_empty() {
        doc.insert("variables".into(), Toml::Table(variables));
    }

    let mut triggers = Table::new();
    for (i, trigger) in array(root, "triggers", &at)?.iter().enumerate() {
        let field = format!("triggers[{i}]");
        let trigger = trigger
            .as_object()
            .ok_or_else(|| at(&field, "expected an object".into()))?;
        let trigger_type = string(trigger, "trigger_type", &field, &at)?;
        let id = string(trigger, "id", &field, &at)?;
        if trigger
            .get("trigger_dependencies")
            .and_then(Json::as_object)
            .is_some_and(|d| !d.is_empty())
        {
            return Err(at(
                &format!("{field}.trigger_dependencies"),
                "trigger dependencies are not supported by containerd-shim-spin".into(),
            ));
        }
        let config_field = format!("{field}.trigger_config");
        let Some(Toml::Table(mut config)) = trigger
            .get("trigger_config")
            .map(|c| toml(c, &config_field, &at))
            .transpose()?
        else {
            return Err(at(&config_field, "expected an object".into()));
        };
        config.insert("id".into(), Toml::String(id));
        let list = triggers
            .entry(trigger_type)
            .or_insert_with(|| Toml::Array(Vec::new()));
        if let Toml::Array(list) = list {
            list.push(Toml::Table(config));
        }
    }
    doc.insert("trigger".into(), Toml::Table(triggers));

    let mut components = Table::new();
    for (i, component) in array(root, "components", &at)?.iter().enumerate() {
        let field = format!("components[{i}]");
        let component = component
            .as_object()
            .ok_or_else(|| at(&field, "expected an object".into()))?;
        let id = string(component, "id", &field, &at)?;
        components.insert(
            id.clone(),
            Toml::Table(component_table(component, &id, &field, &at)?),
        );
    }
    doc.insert("component".into(), Toml::Table(components));

    manifest::from_table(&doc, file)
}

/// How this module makes an error at a JSON field.
type At<'a> = dyn Fn(&str, String) -> ManifestError + 'a;

/// Host features the app requires (`"optional"` ones are not required): none is supported.
fn check_host_requirements(
    requirements: Option<&Json>,
    field: &str,
    at: &At,
) -> Result<(), ManifestError> {
    let Some(requirements) = requirements.and_then(Json::as_object) else {
        return Ok(());
    };
    for (name, value) in requirements {
        if value.as_str() != Some("optional") {
            return Err(at(
                &format!("{field}.{name}"),
                format!(
                    "the application requires {name:?}, which containerd-shim-spin does not provide"
                ),
            ));
        }
    }
    Ok(())
}

/// `[application]` from `metadata`.
fn application(root: &Map<String, Json>, at: &At) -> Result<Table, ManifestError> {
    let metadata = object(root, "metadata", at)?;
    let mut application = Table::new();
    for key in ["name", "version", "description", "authors"] {
        if let Some(value) = metadata.get(key) {
            application.insert(key.into(), toml(value, &format!("metadata.{key}"), at)?);
        }
    }
    // The HTTP trigger's settings: `metadata.triggers.http`, or from older Spin the single
    // trigger type's in `metadata.trigger` (with its `type`).
    let http = metadata
        .get("triggers")
        .and_then(|t| t.get("http"))
        .map(|h| ("metadata.triggers.http", h))
        .or_else(|| {
            metadata
                .get("trigger")
                .filter(|t| t.get("type").and_then(Json::as_str) == Some("http"))
                .map(|h| ("metadata.trigger", h))
        });
    if let Some((field, Json::Object(settings))) = http
        && let Some(base) = settings.get("base")
    {
        let mut http = Table::new();
        http.insert("base".into(), toml(base, &format!("{field}.base"), at)?);
        let mut trigger = Table::new();
        trigger.insert("http".into(), Toml::Table(http));
        application.insert("trigger".into(), Toml::Table(trigger));
    }
    Ok(application)
}

/// `[component.<id>]` from a locked component.
fn component_table(
    component: &Map<String, Json>,
    id: &str,
    field: &str,
    at: &At,
) -> Result<Table, ManifestError> {
    let mut table = Table::new();
    table.insert(
        "source".into(),
        Toml::String(module_file(component, field, at)?),
    );
    for (from, to) in [("env", "environment"), ("config", "variables")] {
        let values = object(component, from, &|f, m| at(&format!("{field}.{f}"), m))?;
        if !values.is_empty() {
            let value = toml(
                &Json::Object(values.clone()),
                &format!("{field}.{from}"),
                at,
            )?;
            table.insert(to.into(), value);
        }
    }
    let metadata_field = format!("{field}.metadata");
    let metadata = object(component, "metadata", &|f, m| {
        at(&format!("{field}.{f}"), m)
    })?;
    for (from, to) in [
        ("description", "description"),
        ("allowed_outbound_hosts", "allowed_outbound_hosts"),
        ("key_value_stores", "key_value_stores"),
        ("databases", "sqlite_databases"),
        ("ai_models", "ai_models"),
    ] {
        if let Some(value) = metadata.get(from) {
            table.insert(
                to.into(),
                toml(value, &format!("{metadata_field}.{from}"), at)?,
            );
        }
    }
    if component
        .get("dependencies")
        .and_then(Json::as_object)
        .is_some_and(|d| !d.is_empty())
    {
        return Err(at(
            &format!("{field}.dependencies"),
            "component dependencies (composing components) are not supported by \
             containerd-shim-spin"
                .into(),
        ));
    }
    let requirements = format!("{field}.host_requirements");
    check_host_requirements(component.get("host_requirements"), &requirements, at)?;
    if !array(component, "files", &|f, m| at(&format!("{field}.{f}"), m))?.is_empty() {
        // The shim wrote every file of the component under this directory.
        let mut mount = Table::new();
        mount.insert("source".into(), Toml::String(format!("{ASSETS_DIR}/{id}")));
        mount.insert("destination".into(), Toml::String("/".into()));
        table.insert("files".into(), Toml::Array(vec![Toml::Table(mount)]));
    }
    Ok(table)
}

/// The module of a component: `<hex>.wasm` beside the locked app, from `source.digest`.
fn module_file(
    component: &Map<String, Json>,
    field: &str,
    at: &At,
) -> Result<String, ManifestError> {
    let source_field = format!("{field}.source");
    let source = component
        .get("source")
        .and_then(Json::as_object)
        .ok_or_else(|| at(&source_field, "missing, or not an object".into()))?;
    let digest_field = format!("{source_field}.digest");
    let Some(digest) = source.get("digest") else {
        let message = match source.get("source").and_then(Json::as_str) {
            Some(url) => format!(
                "missing: the module is {url}, outside the image (a locked app made for \
                 `spin up`, not pushed with `spin registry push`)"
            ),
            None => "missing".into(),
        };
        return Err(at(&digest_field, message));
    };
    let hex = digest
        .as_str()
        .and_then(|d| d.strip_prefix("sha256:"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| at(&digest_field, format!("{digest} is not a sha256: digest")))?;
    Ok(format!("{}.wasm", hex.to_ascii_lowercase()))
}

fn object<'a>(
    parent: &'a Map<String, Json>,
    key: &str,
    at: &At,
) -> Result<&'a Map<String, Json>, ManifestError> {
    static EMPTY: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);
    match parent.get(key) {
        None | Some(Json::Null) => Ok(&EMPTY),
        Some(Json::Object(map)) => Ok(map),
        Some(_) => Err(at(key, "expected an object".into())),
    }
}

fn array<'a>(
    parent: &'a Map<String, Json>,
    key: &str,
    at: &At,
) -> Result<&'a [Json], ManifestError> {
    match parent.get(key) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(list)) => Ok(list),
        Some(_) => Err(at(key, "expected an array".into())),
    }
}

fn string(
    parent: &Map<String, Json>,
    key: &str,
    field: &str,
    at: &At,
) -> Result<String, ManifestError> {
    match parent.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(at(&format!("{field}.{key}"), "expected a string".into())),
        None => Err(at(&format!("{field}.{key}"), "missing".into())),
    }
}

/// A JSON value as TOML (which has no null).
fn toml(value: &Json, field: &str, at: &At) -> Result<Toml, ManifestError> {
    Ok(match value {
        Json::Null => return Err(at(field, "null, which a manifest cannot say".into())),
        Json::Bool(b) => Toml::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Toml::Integer(i),
            (None, Some(f)) => Toml::Float(f),
            (None, None) => return Err(at(field, format!("{n} is out of range"))),
        },
        Json::String(s) => Toml::String(s.clone()),
        Json::Array(items) => Toml::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| toml(v, &format!("{field}[{i}]"), at))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Toml::Table(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), toml(v, &format!("{field}.{k}"), at)?)))
                .collect::<Result<_, ManifestError>>()?,
        ),
    })
}

#[cfg(test)]
mod tests;
