//! The node's settings for a shim: the `options` table of the runtime in containerd's config.
//!
//! containerd hands a runtime's options to the shim in one of three messages:
//!
//! - CRI, for a runtime type other than runc's, sends `runtimeoptions.v1.Options` whose
//!   `config_body` is the whole `options` table as TOML (config version 2 of containerd 1.x
//!   and version 3 of 2.x alike), or whose `config_path` names a TOML file when the table
//!   sets `ConfigPath`;
//! - `ctr run --runtime-config-path FILE` sends the same message with `config_path`;
//! - a client may send runc's `containerd.runc.v1.Options`, of which `SystemdCgroup` and
//!   `Root` apply.
//!
//! Every key of the TOML is one of [`Options`]' fields (PascalCase, as runc's options are
//! written); an unknown key or a bad value is an error that names it, returned by `create`.
//! Settings for one container ([`ContainerSettings`]) take their defaults from here and are
//! overridden by the container's annotations.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::empty::Empty;
use containerd_shim::protos::shim::oci::Options as RuncOptions;
use serde::{Deserialize, Serialize};

use crate::allowed_hosts::AllowedHosts;

/// The runtime options of a shim, as the operator wrote them (validated by [`Options::parse`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "PascalCase")]
pub struct Options {
    /// Place containers' cgroups through systemd (runc's option of the same name).
    pub systemd_cgroup: bool,
    /// The state root of the shim's containers (runc's option of the same name).
    pub root: String,
    /// Wasm proposals switched on or off, by name (`gc = false`); engine-specific.
    pub wasm_features: BTreeMap<String, bool>,
    /// The compiler's optimisation level: `none`, `speed` or `speed_and_size`.
    pub opt_level: Option<String>,
    /// Instances an HTTP server's pooling allocator holds at once.
    pub pooling_max_instances: Option<u32>,
    /// The largest linear memory a pooled instance may grow to (size).
    pub pooling_max_memory_size: Option<String>,
    /// The precompile cache's directory, or `off`.
    pub cache_dir: Option<String>,
    /// The precompile cache's size cap (size, or `off`).
    pub cache_max_size: Option<String>,
    /// The largest module the shim loads (size, or `off`).
    pub max_module_size: Option<String>,
    /// Default of the annotation [`MAX_MEMORY_ANNOTATION`].
    pub max_memory: Option<String>,
    /// Default of the annotation [`MAX_TABLE_ELEMENTS_ANNOTATION`].
    pub max_table_elements: Option<u64>,
    /// Default of the annotation [`DEADLINE_ANNOTATION`].
    pub deadline: Option<String>,
    /// Default of the annotation [`REQUEST_DEADLINE_ANNOTATION`].
    pub request_deadline: Option<String>,
    /// Default of the annotation [`ALLOWED_OUTBOUND_HOSTS_ANNOTATION`].
    pub allowed_outbound_hosts: Option<Vec<String>>,
}

/// The annotation that caps each linear memory of the module (a size: `64M`).
pub const MAX_MEMORY_ANNOTATION: &str = "io.containerd.wasm.max-memory";
/// The annotation that caps each table of the module (elements).
pub const MAX_TABLE_ELEMENTS_ANNOTATION: &str = "io.containerd.wasm.max-table-elements";
/// The annotation that bounds a command module's run (a duration: `30s`).
pub const DEADLINE_ANNOTATION: &str = "io.containerd.wasm.deadline";
/// The annotation that bounds each request of an HTTP server (a duration).
pub const REQUEST_DEADLINE_ANNOTATION: &str = "io.containerd.wasm.http.request-deadline";
/// The annotation listing the hosts a module may reach (Spin's syntax, comma-separated).
pub const ALLOWED_OUTBOUND_HOSTS_ANNOTATION: &str = "io.containerd.wasm.allowed-outbound-hosts";

/// The exit status of a command module stopped by its deadline: `timeout(1)`'s.
pub const DEADLINE_EXIT_STATUS: i32 = 124;

/// What the engine is built with: the options that change how modules compile and run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// `WasmFeatures`.
    pub wasm_features: BTreeMap<String, bool>,
    /// `OptLevel`.
    pub opt_level: Option<String>,
    /// `PoolingMaxInstances`.
    pub pooling_max_instances: Option<u32>,
    /// `PoolingMaxMemorySize`, in bytes.
    pub pooling_max_memory_size: Option<u64>,
}

impl EngineConfig {
    /// Refuses, naming `engine` and the option, any setting an engine that has none of these
    /// settings is given.
    pub fn refuse_all(&self, engine: &str) -> anyhow::Result<()> {
        let set = [
            ("WasmFeatures", !self.wasm_features.is_empty()),
            ("OptLevel", self.opt_level.is_some()),
            ("PoolingMaxInstances", self.pooling_max_instances.is_some()),
            (
                "PoolingMaxMemorySize",
                self.pooling_max_memory_size.is_some(),
            ),
        ];
        match set.iter().find(|(_, is_set)| *is_set) {
            Some((option, _)) => bail!(
                "the runtime option {option} is not supported by the {engine} engine (see \
                 docs/configuration.md for what each engine honours)"
            ),
            None => Ok(()),
        }
    }
}

/// The create options of containerd's old `io.containerd.runtime.v1.linux` runtime, which
/// `ctr run --uidmap` of containerd 1.6 sends to any runtime but runc's, for the owner of the
/// stdio FIFOs (`IoUid`, `IoGid`). They configure no engine, and the shim opens the FIFOs
/// itself, outside the container's user namespace: they give the defaults.
const LEGACY_CREATE_OPTIONS: &str = "containerd.linux.runc.CreateOptions";

impl Options {
    /// The options in `any` (none: the defaults), validated; `runtime` names the runtime in
    /// errors.
    pub fn from_any(any: Option<&Any>, runtime: &str) -> anyhow::Result<Self> {
        let Some(any) = any.filter(|any| !any.value.is_empty() || !any.type_url.is_empty()) else {
            return Ok(Self::default());
        };
        let options = if any.type_url.ends_with("containerd.runc.v1.Options") {
            let runc = RuncOptions::parse_from_bytes(&any.value)
                .map_err(|e| anyhow::anyhow!("runtime options ({}): {e}", any.type_url))?;
            Self {
                systemd_cgroup: runc.systemd_cgroup,
                root: runc.root,
                ..Self::default()
            }
        } else if any.type_url.ends_with("runtimeoptions.v1.Options") {
            let (path, body) = config_path_and_body(&any.value)
                .with_context(|| format!("runtime options ({})", any.type_url))?;
            match (path, body) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(&path).with_context(|| {
                        format!("the runtime options of {runtime}: read ConfigPath {path}")
                    })?;
                    Self::from_toml(&text)
                        .with_context(|| format!("the runtime options of {runtime} in {path}"))?
                }
                (None, Some(body)) => Self::from_toml(&body)
                    .with_context(|| format!("the runtime options of {runtime}"))?,
                (None, None) => Self::default(),
            }
        } else if any.type_url.ends_with(LEGACY_CREATE_OPTIONS) {
            Self::default()
        } else {
            bail!(
                "runtime options of type {} are not understood by {runtime}: give an options \
                 table in containerd's config or `ctr run --runtime-config-path FILE`",
                any.type_url
            )
        };
        options
            .validate()
            .with_context(|| format!("the runtime options of {runtime}"))?;
        Ok(options)
    }

    /// Parses the `options` table as TOML.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message().trim_end()))
    }

    /// Checks every value, naming the option of the first that is wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.engine_config()?;
        self.max_module_size()?;
        self.cache_max_size()?;
        ContainerSettings::from_annotations(&BTreeMap::new(), self)?;
        if let Some(level) = &self.opt_level
            && !OPT_LEVELS.contains(&level.as_str())
        {
            bail!(
                "OptLevel = {level:?}: expected one of {}",
                OPT_LEVELS.join(", ")
            );
        }
        Ok(())
    }

    /// The settings the engine is built with.
    pub fn engine_config(&self) -> anyhow::Result<EngineConfig> {
        let pooling_max_memory_size = match &self.pooling_max_memory_size {
            Some(size) => Some(
                parse_size(size)
                    .and_then(|size| size.context("`off` is not a memory size"))
                    .with_context(|| format!("PoolingMaxMemorySize = {size:?}"))?,
            ),
            None => None,
        };
        if self.pooling_max_instances == Some(0) {
            bail!("PoolingMaxInstances = 0: at least one instance");
        }
        Ok(EngineConfig {
            wasm_features: self.wasm_features.clone(),
            opt_level: self.opt_level.clone(),
            pooling_max_instances: self.pooling_max_instances,
            pooling_max_memory_size,
        })
    }

    /// `MaxModuleSize`: `None` when unset, `Some(None)` when `off`.
    pub fn max_module_size(&self) -> anyhow::Result<Option<Option<u64>>> {
        self.max_module_size
            .as_ref()
            .map(|size| parse_size(size).with_context(|| format!("MaxModuleSize = {size:?}")))
            .transpose()
    }

    /// `CacheMaxSize`: `None` when unset or `off`.
    pub fn cache_max_size(&self) -> anyhow::Result<Option<u64>> {
        Ok(self
            .cache_max_size
            .as_ref()
            .map(|size| parse_size(size).with_context(|| format!("CacheMaxSize = {size:?}")))
            .transpose()?
            .flatten())
    }

    /// The per-container defaults: annotation → (option, value).
    fn container_defaults(&self) -> BTreeMap<&'static str, (&'static str, String)> {
        [
            (MAX_MEMORY_ANNOTATION, "MaxMemory", self.max_memory.clone()),
            (
                MAX_TABLE_ELEMENTS_ANNOTATION,
                "MaxTableElements",
                self.max_table_elements.map(|n| n.to_string()),
            ),
            (DEADLINE_ANNOTATION, "Deadline", self.deadline.clone()),
            (
                REQUEST_DEADLINE_ANNOTATION,
                "RequestDeadline",
                self.request_deadline.clone(),
            ),
            (
                ALLOWED_OUTBOUND_HOSTS_ANNOTATION,
                "AllowedOutboundHosts",
                self.allowed_outbound_hosts.as_ref().map(|h| h.join(",")),
            ),
        ]
        .into_iter()
        .filter_map(|(annotation, option, value)| Some((annotation, (option, value?))))
        .collect()
    }
}

/// The environment variable in which `start` hands the serving shim (and so its helper
/// zygote, which builds the engine before any create) the options containerd gave it, as JSON.
pub(crate) const OPTIONS_ENV: &str = "WASM_SHIM_RUNTIME_OPTIONS";

/// The options [`OPTIONS_ENV`] carries; the defaults when it is unset or unreadable (`create`
/// parses them again and reports the error).
pub(crate) fn from_start_environment() -> Options {
    std::env::var(OPTIONS_ENV)
        .ok()
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

static PROCESS_OPTIONS: OnceLock<Options> = OnceLock::new();

/// Records the options of the one request a helper process serves, for the node-wide
/// settings read deep in the helper (the precompile cache, the module size limit).
pub(crate) fn set_for_process(options: &Options) {
    let _ = PROCESS_OPTIONS.set(options.clone());
}

/// The options of this helper process's request (the defaults outside a helper).
pub fn for_process() -> &'static Options {
    PROCESS_OPTIONS.get_or_init(Options::default)
}

/// The values of `OptLevel`, as wasmtime names them.
pub const OPT_LEVELS: [&str; 3] = ["none", "speed", "speed_and_size"];

/// `config_path` (field 2) and `config_body` (field 3) of a `runtimeoptions.v1.Options`,
/// read as unknown fields of an empty message: the message is not among the crate's protos.
fn config_path_and_body(bytes: &[u8]) -> anyhow::Result<(Option<String>, Option<String>)> {
    let message = Empty::parse_from_bytes(bytes)?;
    let unknown = message.special_fields.unknown_fields();
    let text = |field: u32| -> anyhow::Result<Option<String>> {
        match unknown.get(field) {
            Some(containerd_shim::protos::protobuf::UnknownValueRef::LengthDelimited(bytes)) => {
                let text = String::from_utf8(bytes.to_vec())
                    .with_context(|| format!("field {field} is not UTF-8"))?;
                Ok(Some(text).filter(|text| !text.is_empty()))
            }
            Some(_) => bail!("field {field} is not a string"),
            None => Ok(None),
        }
    };
    Ok((text(2)?, text(3)?))
}

/// What one container asks of the engine beyond WASI: limits inside the sandbox and the hosts
/// it may reach. Each comes from the container's annotation or, without it, the runtime
/// option of the same meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSettings {
    /// The largest size, in bytes, each linear memory may grow to.
    pub max_memory: Option<u64>,
    /// The most elements each table may hold.
    pub max_table_elements: Option<u64>,
    /// How long a command module may run.
    pub deadline: Option<Duration>,
    /// How long an HTTP server may take over one request.
    pub request_deadline: Option<Duration>,
    /// The hosts the module may reach; `None`: as the network annotation says.
    pub allowed_outbound_hosts: Option<AllowedHosts>,
}

impl ContainerSettings {
    /// The settings of a container with these `annotations` (all of them, or those under
    /// [`crate::ANNOTATION_PREFIX`]), defaults from `options`; an invalid value is an error
    /// naming the annotation or the option.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        options: &Options,
    ) -> anyhow::Result<Self> {
        let defaults = options.container_defaults();
        let value = |annotation: &str| -> Option<(&str, String)> {
            match annotations.get(annotation) {
                Some(value) => Some((value.as_str(), format!("annotation {annotation}"))),
                None => defaults
                    .get(annotation)
                    .map(|(option, value)| (value.as_str(), format!("runtime option {option}"))),
            }
        };
        let size = |annotation: &str| -> anyhow::Result<Option<u64>> {
            let Some((text, source)) = value(annotation) else {
                return Ok(None);
            };
            parse_size(text)
                .and_then(|size| size.context("expected a size, not `off`"))
                .map(Some)
                .with_context(|| format!("{source} = {text:?}"))
        };
        let count = |annotation: &str| -> anyhow::Result<Option<u64>> {
            let Some((text, source)) = value(annotation) else {
                return Ok(None);
            };
            text.trim()
                .parse()
                .map(Some)
                .with_context(|| format!("{source} = {text:?}: expected a number"))
        };
        let duration = |annotation: &str| -> anyhow::Result<Option<Duration>> {
            let Some((text, source)) = value(annotation) else {
                return Ok(None);
            };
            parse_duration(text)
                .map(Some)
                .with_context(|| format!("{source} = {text:?}"))
        };
        let allowed_outbound_hosts = match value(ALLOWED_OUTBOUND_HOSTS_ANNOTATION) {
            Some((text, source)) => {
                let entries: Vec<&str> = text
                    .split([',', ' ', '\n'])
                    .filter(|entry| !entry.is_empty())
                    .collect();
                Some(AllowedHosts::parse(&entries).with_context(|| source.clone())?)
            }
            None => None,
        };
        Ok(Self {
            max_memory: size(MAX_MEMORY_ANNOTATION)?,
            max_table_elements: count(MAX_TABLE_ELEMENTS_ANNOTATION)?,
            deadline: duration(DEADLINE_ANNOTATION)?,
            request_deadline: duration(REQUEST_DEADLINE_ANNOTATION)?,
            allowed_outbound_hosts,
        })
    }
}

/// `123`, `64K`, `16M`, `1G` (powers of 1024) or `off`.
pub fn parse_size(value: &str) -> anyhow::Result<Option<u64>> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (digits, shift) = match value.char_indices().last() {
        Some((at, 'k' | 'K')) => (&value[..at], 10),
        Some((at, 'm' | 'M')) => (&value[..at], 20),
        Some((at, 'g' | 'G')) => (&value[..at], 30),
        _ => (value, 0),
    };
    let number: u64 = digits
        .parse()
        .with_context(|| format!("{value:?} is not a size (bytes, or a number with K, M or G)"))?;
    let bytes = number
        .checked_mul(1 << shift)
        .with_context(|| format!("{value:?} is too large"))?;
    Ok(Some(bytes))
}

/// `250ms`, `30s`, `5m`, `1h`: a whole number and a unit.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .context("expected a duration with a unit: 250ms, 30s, 5m or 1h")?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .context("expected a duration with a unit: 250ms, 30s, 5m or 1h")?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => bail!("unknown unit {unit:?}: expected ms, s, m or h"),
    };
    if duration.is_zero() {
        bail!("a duration of zero stops everything at once");
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_off() {
        assert_eq!(parse_size("123").unwrap(), Some(123));
        assert_eq!(parse_size("64K").unwrap(), Some(64 << 10));
        assert_eq!(parse_size("16m").unwrap(), Some(16 << 20));
        assert_eq!(parse_size(" 1G ").unwrap(), Some(1 << 30));
        assert_eq!(parse_size("OFF").unwrap(), None);
        for bad in ["", "M", "1.5M", "-1", "12T", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn runtime_options(path: Option<&str>, body: Option<&str>) -> Any {
        let mut message = Empty::new();
        let unknown = message.special_fields.mut_unknown_fields();
        unknown.add_length_delimited(1, b"".to_vec());
        if let Some(path) = path {
            unknown.add_length_delimited(2, path.as_bytes().to_vec());
        }
        if let Some(body) = body {
            unknown.add_length_delimited(3, body.as_bytes().to_vec());
        }
        Any {
            type_url: "type.googleapis.com/runtimeoptions.v1.Options".into(),
            value: message.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn the_options_table_arrives_as_a_toml_body_or_file() {
        let body = "SystemdCgroup = false\nOptLevel = \"none\"\nMaxMemory = \"64M\"\n\
                    WasmFeatures = { gc = false, tail_call = false }\n\
                    AllowedOutboundHosts = [\"http://127.0.0.1:8080\"]\n";
        let options = Options::from_any(Some(&runtime_options(None, Some(body))), "rt").unwrap();
        assert_eq!(options.opt_level.as_deref(), Some("none"));
        assert_eq!(options.wasm_features.get("gc"), Some(&false));
        let settings = ContainerSettings::from_annotations(&BTreeMap::new(), &options).unwrap();
        assert_eq!(settings.max_memory, Some(64 << 20));
        assert!(
            settings
                .allowed_outbound_hosts
                .unwrap()
                .allows_request("http", "127.0.0.1", 8080)
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wasmtime.toml");
        std::fs::write(&file, "Deadline = \"2s\"\n").unwrap();
        let from_file = Options::from_any(
            Some(&runtime_options(Some(file.to_str().unwrap()), None)),
            "rt",
        )
        .unwrap();
        assert_eq!(from_file.deadline.as_deref(), Some("2s"));
        assert_eq!(
            Options::from_any(Some(&runtime_options(None, None)), "rt").unwrap(),
            Options::default()
        );
    }

    #[test]
    fn bad_options_are_named() {
        for (body, named) in [
            ("Bogus = 1", "Bogus"),
            ("MaxMemory = \"lots\"", "MaxMemory"),
            ("Deadline = \"5 parsecs\"", "Deadline"),
            ("OptLevel = \"fast\"", "OptLevel"),
            ("MaxModuleSize = \"9Q\"", "MaxModuleSize"),
            (
                "AllowedOutboundHosts = [\"ftp://\"]",
                "AllowedOutboundHosts",
            ),
            ("PoolingMaxInstances = 0", "PoolingMaxInstances"),
        ] {
            let error =
                Options::from_any(Some(&runtime_options(None, Some(body))), "rt").unwrap_err();
            let error = format!("{error:#}");
            assert!(error.contains(named), "{body}: {error}");
            assert!(error.contains("runtime options of rt"), "{body}: {error}");
        }
        let error = Options::from_any(
            Some(&runtime_options(Some("/nonexistent/options.toml"), None)),
            "rt",
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("/nonexistent/options.toml"));
    }

    #[test]
    fn annotations_override_the_options_defaults() {
        let options = Options {
            deadline: Some("10s".into()),
            max_table_elements: Some(100),
            ..Options::default()
        };
        let annotations = BTreeMap::from([(DEADLINE_ANNOTATION.to_string(), "250ms".to_string())]);
        let settings = ContainerSettings::from_annotations(&annotations, &options).unwrap();
        assert_eq!(settings.deadline, Some(Duration::from_millis(250)));
        assert_eq!(settings.max_table_elements, Some(100));
        let bad = BTreeMap::from([(REQUEST_DEADLINE_ANNOTATION.to_string(), "0s".to_string())]);
        let error = ContainerSettings::from_annotations(&bad, &options).unwrap_err();
        assert!(format!("{error:#}").contains(REQUEST_DEADLINE_ANNOTATION));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn runc_options_give_systemd_and_root() {
        let runc = RuncOptions {
            systemd_cgroup: true,
            root: "/var/run/wasm".into(),
            ..Default::default()
        };
        let any = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: runc.write_to_bytes().unwrap(),
            ..Default::default()
        };
        let options = Options::from_any(Some(&any), "rt").unwrap();
        assert!(options.systemd_cgroup);
        assert_eq!(options.root, "/var/run/wasm");
    }

    #[test]
    fn the_legacy_create_options_of_ctr_uidmap_give_the_defaults() {
        // IoUid = 100000 and IoGid = 100000 (fields 10 and 11), as `ctr run --uidmap` sends.
        let any = Any {
            type_url: LEGACY_CREATE_OPTIONS.into(),
            value: vec![0x50, 0xa0, 0x8d, 0x06, 0x58, 0xa0, 0x8d, 0x06],
            ..Default::default()
        };
        assert_eq!(
            Options::from_any(Some(&any), "rt").unwrap(),
            Options::default()
        );
    }
}
