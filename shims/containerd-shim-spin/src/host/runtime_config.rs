//! Spin's runtime configuration file, `/runtime-config.toml` in the container (where
//! containerd-shim-spin reads it, and where SpinKube mounts a SpinApp's `runtimeConfig`): here,
//! where each key-value store keeps its data.
//!
//! ```toml
//! [key_value_store.default]
//! type = "spin"            # SQLite, the only type served here
//! path = "/data/kv.db"     # relative paths are relative to the file's directory
//! ```
//!
//! A store without `path`, and the store `default` when the file does not configure it, live in
//! memory for the container's life. The file is read when the application starts serving,
//! inside the container, so that it and the database may be on a mounted volume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};

use super::key_value::{Database, KvStore};

/// Where the file is in the container.
pub const RUNTIME_CONFIG: &str = "/runtime-config.toml";

/// A key-value store's place: a database file, or memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorePlace {
    File(PathBuf),
    Memory,
}

/// The key-value stores the file configures, by label.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    stores: BTreeMap<String, StorePlace>,
}

impl RuntimeConfig {
    /// Reads `file`; no file is an empty configuration.
    pub fn read(file: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(file) {
            Ok(text) => Self::parse(&text, file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow!("{}: cannot read it: {e}", file.display())),
        }
    }

    pub fn parse(text: &str, file: &Path) -> anyhow::Result<Self> {
        let shown = file.display();
        let table: toml::Table = toml::from_str(text).with_context(|| format!("{shown}"))?;
        let mut stores = BTreeMap::new();
        for (key, value) in &table {
            if key != "key_value_store" {
                log::info!(
                    "{shown}: [{key}] is not used by this shim (it reads key_value_store only)"
                );
                continue;
            }
            let labels = value
                .as_table()
                .ok_or_else(|| anyhow!("{shown}: key_value_store: expected tables"))?;
            for (label, store) in labels {
                let field = format!("key_value_store.{label}");
                let store = store
                    .as_table()
                    .ok_or_else(|| anyhow!("{shown}: {field}: expected a table"))?;
                match store.get("type").and_then(toml::Value::as_str) {
                    Some("spin") => {}
                    Some(other) => bail!(
                        "{shown}: {field}.type: {other:?} is not supported: this shim keeps \
                         key-value stores in SQLite (type = \"spin\")"
                    ),
                    None => bail!("{shown}: {field}.type: missing (type = \"spin\")"),
                }
                let place = match store.get("path") {
                    None => StorePlace::Memory,
                    Some(path) => {
                        let path = path
                            .as_str()
                            .ok_or_else(|| anyhow!("{shown}: {field}.path: expected a string"))?;
                        let dir = file.parent().unwrap_or(Path::new("/"));
                        StorePlace::File(dir.join(path))
                    }
                };
                if let Some(unknown) = store
                    .keys()
                    .find(|k| !["type", "path"].contains(&k.as_str()))
                {
                    bail!("{shown}: {field}.{unknown}: unknown field (type and path are read)");
                }
                stores.insert(label.clone(), place);
            }
        }
        Ok(Self { stores })
    }

    /// Where the store `label` is: as configured, memory for `default` when not configured;
    /// `None` for another label the file does not configure.
    pub fn place(&self, label: &str) -> Option<StorePlace> {
        match self.stores.get(label) {
            Some(place) => Some(place.clone()),
            None if label == "default" => Some(StorePlace::Memory),
            None => None,
        }
    }
}

/// Opens stores, one database per place shared by every component and label there.
#[derive(Default)]
pub struct Stores {
    databases: BTreeMap<String, Arc<Database>>,
}

impl Stores {
    /// The store `label` where `config` puts it.
    pub fn open(&mut self, config: &RuntimeConfig, label: &str) -> anyhow::Result<KvStore> {
        let place = config.place(label).ok_or_else(|| {
            anyhow!(
                "key-value store {label:?} is not configured: define [key_value_store.{label}] \
                 in {RUNTIME_CONFIG}"
            )
        })?;
        let key = match &place {
            StorePlace::File(path) => path.display().to_string(),
            // Each in-memory store is its own database.
            StorePlace::Memory => format!(":memory:{label}"),
        };
        let database = match self.databases.get(&key) {
            Some(database) => database.clone(),
            None => {
                let database = match &place {
                    StorePlace::File(path) => Database::open_file(path),
                    StorePlace::Memory => Database::in_memory(),
                }
                .with_context(|| format!("key-value store {label:?}"))?;
                self.databases.insert(key, database.clone());
                database
            }
        };
        Ok(database.store(label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<RuntimeConfig> {
        RuntimeConfig::parse(text, Path::new("/runtime-config.toml"))
    }

    #[test]
    fn stores_are_files_or_memory() {
        let config = parse(
            r#"
            [key_value_store.default]
            type = "spin"
            path = "/data/kv.db"
            [key_value_store.cache]
            type = "spin"
            [key_value_store.rel]
            type = "spin"
            path = "data/rel.db"
            [sqlite_database.default]
            type = "spin"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.place("default"),
            Some(StorePlace::File("/data/kv.db".into()))
        );
        assert_eq!(config.place("cache"), Some(StorePlace::Memory));
        assert_eq!(
            config.place("rel"),
            Some(StorePlace::File("/data/rel.db".into()))
        );
        assert_eq!(config.place("other"), None);
        assert_eq!(
            parse("").unwrap().place("default"),
            Some(StorePlace::Memory)
        );
    }

    #[test]
    fn unsupported_stores_are_named() {
        let err = parse("[key_value_store.x]\ntype = \"redis\"\nurl = \"redis://r\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("key_value_store.x.type: \"redis\""), "{err}");
        let err = parse("[key_value_store.x]\ntype = \"spin\"\npth = \"a\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key_value_store.x.pth: unknown field"),
            "{err}"
        );
        let err = Stores::default()
            .open(&RuntimeConfig::default(), "other")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("define [key_value_store.other]"), "{err}");
    }

    #[test]
    fn one_place_is_one_database() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[key_value_store.a]\ntype = \"spin\"\npath = \"{0}/kv.db\"\n\
             [key_value_store.b]\ntype = \"spin\"\npath = \"{0}/kv.db\"\n",
            dir.path().display()
        );
        let config = parse(&text).unwrap();
        let mut stores = Stores::default();
        let a = stores.open(&config, "a").unwrap();
        stores.open(&config, "b").unwrap();
        assert_eq!(stores.databases.len(), 1);
        a.set("k", b"v").unwrap();
        assert!(stores.open(&config, "a").unwrap().exists("k").unwrap());
        let memory = stores.open(&config, "default").unwrap();
        assert!(!memory.exists("k").unwrap());
    }
}
