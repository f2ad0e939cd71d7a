//! Where and how the HTTP server listens, from the container's environment (`process.env`,
//! the names runwasi's wasmtime shim reads), and how a WASI 0.3 server reuses its instances,
//! from the container's annotations (an operator's setting, which the module does not see).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

/// The address the server binds; the name runwasi's wasmtime shim uses.
pub const ADDR_ENV: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";
/// Every interface of the container's network namespace, port 8080.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8080";
/// The listen(2) backlog: connections the kernel queues before the server accepts them.
pub const BACKLOG_ENV: &str = "WASMTIME_HTTP_PROXY_BACKLOG";
/// Enough for bursts of a few hundred new connections (the kernel caps it at
/// net.core.somaxconn).
pub const DEFAULT_BACKLOG: u32 = 1024;

/// Requests one WASI 0.3 instance serves in all (wasmtime serve's
/// `--max-instance-reuse-count`).
pub const MAX_REUSE_ANNOTATION: &str = "io.containerd.wasm.http.max-instance-reuse";
/// Requests one WASI 0.3 instance serves at once (wasmtime serve's
/// `--max-instance-concurrent-reuse-count`).
pub const MAX_CONCURRENT_REUSE_ANNOTATION: &str =
    "io.containerd.wasm.http.max-instance-concurrent-reuse";
/// Milliseconds an idle reusable instance is kept (wasmtime serve's `--idle-instance-timeout`).
pub const IDLE_TIMEOUT_ANNOTATION: &str = "io.containerd.wasm.http.idle-instance-timeout-ms";

/// How a WASI 0.3 server's instances take requests. The default is a fresh instance per
/// request, as for WASI 0.2 servers: nothing a request leaves in the instance (globals, a
/// cache in linear memory) reaches another request. Reuse trades that isolation for fewer
/// instantiations; wasmtime serve reuses by default (128 requests, 16 at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    pub max_requests: usize,
    pub max_concurrent: usize,
    pub idle: Duration,
}

impl Reuse {
    pub const FRESH_PER_REQUEST: Self = Self {
        max_requests: 1,
        max_concurrent: 1,
        idle: Duration::from_secs(1),
    };

    /// Whether an instance may serve more than one request.
    pub fn reuses(&self) -> bool {
        self.max_requests > 1
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub addr: SocketAddr,
    pub backlog: u32,
    pub reuse: Reuse,
}

impl Settings {
    /// Reads [`ADDR_ENV`] and [`BACKLOG_ENV`] from `env` (the last value of a name wins, as in
    /// a process environment) and the reuse annotations from `annotations`; an invalid value
    /// is an error naming the variable or annotation.
    pub fn new(
        env: &[(String, String)],
        annotations: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        Self::read(env, annotations, ADDR_ENV, DEFAULT_ADDR)
    }

    /// As [`Settings::new`], with the address in the variable `addr_env` (`default_addr`
    /// when unset): another shim's name for it (Spin's `SPIN_HTTP_LISTEN_ADDR`).
    pub fn read(
        env: &[(String, String)],
        annotations: &BTreeMap<String, String>,
        addr_env: &str,
        default_addr: &str,
    ) -> anyhow::Result<Self> {
        let lookup = |name: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let addr = lookup(addr_env).unwrap_or(default_addr);
        let addr = addr
            .parse()
            .with_context(|| format!("{addr_env}={addr:?} is not an IP address and port"))?;
        let backlog = match lookup(BACKLOG_ENV) {
            None => DEFAULT_BACKLOG,
            Some(value) => positive(value)
                .and_then(|n| u32::try_from(n).ok())
                .with_context(|| format!("{BACKLOG_ENV}={value:?} is not a positive integer"))?,
        };
        let annotated = |name: &str, default: u64| -> anyhow::Result<u64> {
            match annotations.get(name) {
                None => Ok(default),
                Some(value) => positive(value).with_context(|| {
                    format!("annotation {name}={value:?} is not a positive integer")
                }),
            }
        };
        let fresh = Reuse::FRESH_PER_REQUEST;
        let reuse = Reuse {
            max_requests: annotated(MAX_REUSE_ANNOTATION, fresh.max_requests as u64)? as usize,
            max_concurrent: annotated(MAX_CONCURRENT_REUSE_ANNOTATION, fresh.max_concurrent as u64)?
                as usize,
            idle: Duration::from_millis(annotated(
                IDLE_TIMEOUT_ANNOTATION,
                fresh.idle.as_millis() as u64,
            )?),
        };
        Ok(Self {
            addr,
            backlog,
            reuse,
        })
    }
}

/// `value` as an integer above 0.
fn positive(value: &str) -> Option<u64> {
    value.parse().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_unset() {
        let settings = Settings::new(&env(&[("OTHER", "1")]), &BTreeMap::new()).unwrap();
        assert_eq!(settings.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(settings.backlog, DEFAULT_BACKLOG);
        assert_eq!(settings.reuse, Reuse::FRESH_PER_REQUEST);
        assert!(!settings.reuse.reuses());
    }

    #[test]
    fn reuse_comes_from_annotations_not_the_environment() {
        let settings = Settings::new(
            &env(&[(MAX_REUSE_ANNOTATION, "2")]),
            &annotations(&[
                (MAX_REUSE_ANNOTATION, "128"),
                (MAX_CONCURRENT_REUSE_ANNOTATION, "16"),
                (IDLE_TIMEOUT_ANNOTATION, "250"),
            ]),
        )
        .unwrap();
        assert_eq!(
            settings.reuse,
            Reuse {
                max_requests: 128,
                max_concurrent: 16,
                idle: Duration::from_millis(250)
            }
        );
        assert!(settings.reuse.reuses());
    }

    #[test]
    fn values_are_read_and_the_last_one_wins() {
        let settings = Settings::new(
            &env(&[
                (ADDR_ENV, "127.0.0.1:1"),
                (ADDR_ENV, "[::1]:9000"),
                (BACKLOG_ENV, "16"),
            ]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(settings.addr, "[::1]:9000".parse().unwrap());
        assert_eq!(settings.backlog, 16);
    }

    #[test]
    fn invalid_values_name_the_variable_or_annotation() {
        let none = BTreeMap::new();
        let err = Settings::new(&env(&[(ADDR_ENV, "localhost")]), &none).unwrap_err();
        assert!(err.to_string().contains(ADDR_ENV), "{err}");
        for bad in ["0", "-1", "many", "4294967296"] {
            let err = Settings::new(&env(&[(BACKLOG_ENV, bad)]), &none).unwrap_err();
            assert!(err.to_string().contains(BACKLOG_ENV), "{err}");
        }
        for name in [
            MAX_REUSE_ANNOTATION,
            MAX_CONCURRENT_REUSE_ANNOTATION,
            IDLE_TIMEOUT_ANNOTATION,
        ] {
            for bad in ["0", "-1", "many"] {
                let err = Settings::new(&[], &annotations(&[(name, bad)])).unwrap_err();
                assert!(err.to_string().contains(name), "{err}");
            }
        }
    }
}
