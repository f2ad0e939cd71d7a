//! Key-value stores on SQLite, as Spin's default `spin` store type keeps them: one table
//! `spin_key_value (store, key, value)` in a database file, or in memory when no file is
//! configured (containerd-shim-spin's default too: the data lives as long as the container).
//! A file Spin wrote (`.spin/sqlite_key_value.db`) can be given as it is.
//!
//! Every store of one database file shares one connection, behind a mutex: requests are
//! short, and SQLite serialises writers anyway.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use rusqlite::{Connection, OptionalExtension, params};

/// A database of stores: a file or memory.
pub struct Database {
    connection: Mutex<Connection>,
    /// The file, or `memory`, for messages.
    place: String,
}

/// One store (a label) of a database; cloning shares the connection.
#[derive(Clone)]
pub struct KvStore {
    label: String,
    database: Arc<Database>,
}

impl Database {
    /// Opens (creating them if needed) the database file and its table.
    pub fn open_file(path: &Path) -> anyhow::Result<Arc<Self>> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("create the directory {}", dir.display()))?;
        }
        let connection = Connection::open(path)
            .with_context(|| format!("open the SQLite database {}", path.display()))?;
        Self::with_table(connection, path.display().to_string())
    }

    /// A database in memory, gone with the container.
    pub fn in_memory() -> anyhow::Result<Arc<Self>> {
        Self::with_table(Connection::open_in_memory()?, "memory".to_string())
    }

    fn with_table(connection: Connection, place: String) -> anyhow::Result<Arc<Self>> {
        // Another process (a second container on the same volume) may hold the lock briefly.
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS spin_key_value (
                    store TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (store, key)
                )",
            )
            .with_context(|| format!("create the key-value table in {place}"))?;
        Ok(Arc::new(Self {
            connection: Mutex::new(connection),
            place,
        }))
    }

    /// The store `label` of this database.
    pub fn store(self: &Arc<Self>, label: &str) -> KvStore {
        KvStore {
            label: label.to_string(),
            database: self.clone(),
        }
    }
}

impl KvStore {
    /// Runs `query` on the store's connection; a failure names the store and its place.
    fn with<T>(
        &self,
        what: &str,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let connection = self
            .database
            .connection
            .lock()
            .map_err(|_| anyhow!("the store's connection was poisoned by a panic"))?;
        query(&connection).map_err(|e| {
            let e = anyhow!(
                "key-value store {:?} ({}): {what}: {e}",
                self.label,
                self.database.place
            );
            log::warn!("{e:#}");
            e
        })
    }

    pub fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.with("get", |db| {
            db.query_row(
                "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
                params![self.label, key],
                |row| row.get(0),
            )
            .optional()
        })
    }

    pub fn set(&self, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.with("set", |db| {
            db.execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                params![self.label, key, value],
            )
            .map(drop)
        })
    }

    pub fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.with("delete", |db| {
            db.execute(
                "DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2",
                params![self.label, key],
            )
            .map(drop)
        })
    }

    pub fn exists(&self, key: &str) -> anyhow::Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    pub fn keys(&self) -> anyhow::Result<Vec<String>> {
        self.with("list the keys", |db| {
            let mut statement =
                db.prepare("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?;
            statement
                .query_map(params![self.label], |row| row.get(0))?
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_of_one_database_keep_their_own_keys() {
        let db = Database::in_memory().unwrap();
        let (a, b) = (db.store("a"), db.store("b"));
        assert_eq!(a.get("k").unwrap(), None);
        a.set("k", b"1").unwrap();
        a.set("k", b"2").unwrap();
        b.set("other", b"x").unwrap();
        assert_eq!(a.get("k").unwrap().as_deref(), Some(&b"2"[..]));
        assert!(a.exists("k").unwrap());
        assert!(!b.exists("k").unwrap());
        assert_eq!(a.keys().unwrap(), ["k"]);
        a.delete("k").unwrap();
        a.delete("k").unwrap();
        assert_eq!(a.get("k").unwrap(), None);
        assert_eq!(b.keys().unwrap(), ["other"]);
    }

    #[test]
    fn a_file_keeps_the_data_for_the_next_opening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/kv.db");
        Database::open_file(&path)
            .unwrap()
            .store("default")
            .set("count", b"7")
            .unwrap();
        let again = Database::open_file(&path).unwrap();
        assert_eq!(
            again.store("default").get("count").unwrap().as_deref(),
            Some(&b"7"[..])
        );
    }
}
