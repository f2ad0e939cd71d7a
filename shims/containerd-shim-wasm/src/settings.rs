//! Every setting the shims read, in one list: the runtime options (`config.rs`), the
//! annotations, and the environment variables of the shim and of the container.
//! `docs/configuration.md` documents exactly these; the tests below fail when the two differ,
//! or when the code reads a setting that is not listed.

/// Where a setting comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The `options` table of the runtime in containerd's config.
    RuntimeOption,
    /// The container's annotations (`ctr --annotation`, `docker run --annotation`, CRI).
    Annotation,
    /// The shim's own environment (containerd's, inherited).
    ShimEnvironment,
    /// The container's `process.env`.
    ContainerEnvironment,
}

/// One setting: its name and the engines that honour it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub source: Source,
    pub engines: &'static [&'static str],
}

const ALL: &[&str] = &["wasmtime", "wamr", "wasmedge", "spin"];
const WASMTIME: &[&str] = &["wasmtime", "spin"];

const fn setting(name: &'static str, source: Source, engines: &'static [&'static str]) -> Setting {
    Setting {
        name,
        source,
        engines,
    }
}

use Source::*;

/// The settings, in the order of `docs/configuration.md`.
pub const SETTINGS: &[Setting] = &[
    setting("SystemdCgroup", RuntimeOption, ALL),
    setting("Root", RuntimeOption, ALL),
    setting("WasmFeatures", RuntimeOption, WASMTIME),
    setting("OptLevel", RuntimeOption, WASMTIME),
    setting("PoolingMaxInstances", RuntimeOption, WASMTIME),
    setting("PoolingMaxMemorySize", RuntimeOption, WASMTIME),
    setting("CacheDir", RuntimeOption, ALL),
    setting("CacheMaxSize", RuntimeOption, WASMTIME),
    setting("MaxModuleSize", RuntimeOption, ALL),
    setting("MaxMemory", RuntimeOption, &["wasmtime", "wamr", "spin"]),
    setting("MaxTableElements", RuntimeOption, WASMTIME),
    setting("Deadline", RuntimeOption, ALL),
    setting("RequestDeadline", RuntimeOption, WASMTIME),
    setting("AllowedOutboundHosts", RuntimeOption, &["wasmtime", "wamr"]),
    setting("io.containerd.wasm.network", Annotation, ALL),
    setting(
        "io.containerd.wasm.allowed-outbound-hosts",
        Annotation,
        &["wasmtime", "wamr"],
    ),
    setting("io.containerd.wasm.preopens", Annotation, ALL),
    setting(
        "io.containerd.wasm.max-memory",
        Annotation,
        &["wasmtime", "wamr", "spin"],
    ),
    setting(
        "io.containerd.wasm.max-table-elements",
        Annotation,
        WASMTIME,
    ),
    setting("io.containerd.wasm.deadline", Annotation, ALL),
    setting(
        "io.containerd.wasm.http.request-deadline",
        Annotation,
        WASMTIME,
    ),
    setting(
        "io.containerd.wasm.http.max-instance-reuse",
        Annotation,
        WASMTIME,
    ),
    setting(
        "io.containerd.wasm.http.max-instance-concurrent-reuse",
        Annotation,
        WASMTIME,
    ),
    setting(
        "io.containerd.wasm.http.idle-instance-timeout-ms",
        Annotation,
        WASMTIME,
    ),
    setting("io.containerd.wasm.coredump-dir", Annotation, WASMTIME),
    setting("io.containerd.wasm.coredump-max-size", Annotation, WASMTIME),
    setting("io.containerd.wasm.profile-dir", Annotation, &["wasmtime"]),
    setting("RUST_LOG", ShimEnvironment, ALL),
    setting("WASM_SHIM_CACHE_DIR", ShimEnvironment, ALL),
    setting("WASM_SHIM_MAX_MODULE_SIZE", ShimEnvironment, ALL),
    setting("TTRPC_ADDRESS", ShimEnvironment, ALL),
    setting("WASM_SHIM_RUNTIME_OPTIONS", ShimEnvironment, ALL),
    setting("WASM_SHIM_START_NS", ShimEnvironment, ALL),
    setting("WASM_SHIM_TEST_STUCK_AFTER_SHUTDOWN", ShimEnvironment, ALL),
    setting("OTEL_EXPORTER_OTLP_ENDPOINT", ShimEnvironment, ALL),
    setting("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ShimEnvironment, ALL),
    setting("OTEL_EXPORTER_OTLP_PROTOCOL", ShimEnvironment, ALL),
    setting("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", ShimEnvironment, ALL),
    setting("OTEL_SERVICE_NAME", ShimEnvironment, ALL),
    setting("OTEL_SDK_DISABLED", ShimEnvironment, ALL),
    setting("OTEL_TRACES_EXPORTER", ShimEnvironment, ALL),
    setting(
        "WASMTIME_HTTP_PROXY_SOCKET_ADDR",
        ContainerEnvironment,
        &["wasmtime"],
    ),
    setting(
        "WASMTIME_HTTP_PROXY_BACKLOG",
        ContainerEnvironment,
        WASMTIME,
    ),
    setting("SPIN_HTTP_LISTEN_ADDR", ContainerEnvironment, &["spin"]),
    setting("SPIN_COMPONENTS_TO_RETAIN", ContainerEnvironment, &["spin"]),
    setting("SPIN_VARIABLE_<NAME>", ContainerEnvironment, &["spin"]),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use serde::Deserialize;
    use serde::de::value::Error;

    use super::*;
    use crate::config::Options;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// `(source, name, engines)` of every row of the reference's four tables.
    fn documented() -> BTreeSet<(Source, String, Vec<String>)> {
        let text = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
        let mut source = None;
        let mut rows = BTreeSet::new();
        for line in text.lines() {
            if let Some(heading) = line.strip_prefix("## ") {
                source = match heading.trim() {
                    "Runtime options" => Some(RuntimeOption),
                    "Annotations" => Some(Annotation),
                    "Environment variables of the shim" => Some(ShimEnvironment),
                    "Environment variables of the container" => Some(ContainerEnvironment),
                    _ => None,
                };
                continue;
            }
            let (Some(source), Some(row)) = (source, line.strip_prefix("| `")) else {
                continue;
            };
            let cells: Vec<&str> = row.split(" | ").collect();
            let name = cells[0].trim_end_matches('`').to_string();
            let engines = match cells.get(3).map(|cell| cell.trim()) {
                Some("all") => ALL.iter().map(|e| e.to_string()).collect(),
                Some(list) => list.split(", ").map(str::to_string).collect(),
                None => panic!("{name}: no engines cell"),
            };
            rows.insert((source, name, engines));
        }
        rows
    }

    #[test]
    fn the_reference_lists_exactly_the_settings() {
        let listed: BTreeSet<(Source, String, Vec<String>)> = SETTINGS
            .iter()
            .map(|s| {
                let engines = s.engines.iter().map(|e| e.to_string()).collect();
                (s.source, s.name.to_string(), engines)
            })
            .collect();
        let documented = documented();
        let missing: Vec<_> = listed.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&listed).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "docs/configuration.md lacks (or has other engines for) {missing:?}; it lists \
             what the code does not: {extra:?}"
        );
    }

    /// The names serde reads for [`Options`]: its struct's fields, as a deserializer sees them.
    struct FieldNames(Vec<&'static str>);

    impl<'de> serde::Deserializer<'de> for &mut FieldNames {
        type Error = Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(serde::de::Error::custom("field names only"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Error> {
            self.0 = fields.to_vec();
            Err(serde::de::Error::custom("field names only"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    #[test]
    fn every_runtime_option_read_is_listed() {
        let mut names = FieldNames(Vec::new());
        let _ = Options::deserialize(&mut names);
        assert!(!names.0.is_empty());
        let read: BTreeSet<&str> = names.0.into_iter().collect();
        let listed: BTreeSet<&str> = SETTINGS
            .iter()
            .filter(|s| s.source == RuntimeOption)
            .map(|s| s.name)
            .collect();
        assert_eq!(read, listed, "the runtime options read and those listed");
    }

    /// The source of every shim crate, without its unit tests.
    fn shim_sources() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, found: &mut Vec<(PathBuf, String)>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("test_support.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let code = match text.find("#[cfg(test)]\nmod tests") {
                        Some(at) => text[..at].to_string(),
                        None => text,
                    };
                    found.push((path, code));
                }
            }
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(repo().join("shims")).unwrap().flatten() {
            let src = entry.path().join("src");
            if entry.file_name() != "conformance" && src.is_dir() {
                walk(&src, &mut found);
            }
        }
        assert!(found.len() > 20, "the shims' sources were not found");
        found
    }

    #[test]
    fn every_annotation_and_variable_in_the_code_is_listed() {
        let names = regex::Regex::new(
            r#""(io\.containerd\.wasm\.[a-z0-9.-]*[a-z0-9]|(?:WASM|WASMTIME|SPIN|RUST|TTRPC|OTEL)_[A-Z0-9_]*)(\{\})?""#,
        )
        .unwrap();
        let listed: BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
        let mut unlisted = BTreeSet::new();
        for (path, code) in shim_sources() {
            for found in names.captures_iter(&code) {
                let name = match found.get(2) {
                    Some(_) => format!("{}<NAME>", &found[1]),
                    None => found[1].to_string(),
                };
                if !listed.contains(name.as_str()) {
                    unlisted.insert(format!("{name} ({})", path.display()));
                }
            }
        }
        assert!(
            unlisted.is_empty(),
            "read by the code but not in settings::SETTINGS (nor docs/configuration.md): {unlisted:?}"
        );
    }
}
