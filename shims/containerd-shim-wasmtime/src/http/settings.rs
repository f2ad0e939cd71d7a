//! Where and how the HTTP server listens, and how a WASI 0.3 server reuses its instances,
//! from the container's environment (`process.env`).

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
pub const MAX_REUSE_ENV: &str = "WASMTIME_HTTP_MAX_INSTANCE_REUSE";
/// Requests one WASI 0.3 instance serves at once (wasmtime serve's
/// `--max-instance-concurrent-reuse-count`).
pub const MAX_CONCURRENT_REUSE_ENV: &str = "WASMTIME_HTTP_MAX_INSTANCE_CONCURRENT_REUSE";
/// Milliseconds an idle reusable instance is kept (wasmtime serve's `--idle-instance-timeout`).
pub const IDLE_TIMEOUT_ENV: &str = "WASMTIME_HTTP_IDLE_INSTANCE_TIMEOUT_MS";

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
    /// a process environment); an invalid value is an error naming the variable.
    pub fn from_env(env: &[(String, String)]) -> anyhow::Result<Self> {
        let lookup = |name: &str| {
            env.iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let addr = lookup(ADDR_ENV).unwrap_or(DEFAULT_ADDR);
        let addr = addr
            .parse()
            .with_context(|| format!("{ADDR_ENV}={addr:?} is not an IP address and port"))?;
        let positive = |name: &str, default: u64| -> anyhow::Result<u64> {
            match lookup(name) {
                None => Ok(default),
                Some(value) => match value.parse() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => anyhow::bail!("{name}={value:?} is not a positive integer"),
                },
            }
        };
        let fresh = Reuse::FRESH_PER_REQUEST;
        let backlog = u32::try_from(positive(BACKLOG_ENV, DEFAULT_BACKLOG.into())?)
            .with_context(|| format!("{BACKLOG_ENV} is too large"))?;
        let reuse = Reuse {
            max_requests: positive(MAX_REUSE_ENV, fresh.max_requests as u64)? as usize,
            max_concurrent: positive(MAX_CONCURRENT_REUSE_ENV, fresh.max_concurrent as u64)?
                as usize,
            idle: Duration::from_millis(positive(IDLE_TIMEOUT_ENV, fresh.idle.as_millis() as u64)?),
        };
        Ok(Self {
            addr,
            backlog,
            reuse,
        })
    }
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

    #[test]
    fn defaults_apply_when_unset() {
        let settings = Settings::from_env(&env(&[("OTHER", "1")])).unwrap();
        assert_eq!(settings.addr, DEFAULT_ADDR.parse().unwrap());
        assert_eq!(settings.backlog, DEFAULT_BACKLOG);
        assert_eq!(settings.reuse, Reuse::FRESH_PER_REQUEST);
        assert!(!settings.reuse.reuses());
    }

    #[test]
    fn reuse_is_read() {
        let settings = Settings::from_env(&env(&[
            (MAX_REUSE_ENV, "128"),
            (MAX_CONCURRENT_REUSE_ENV, "16"),
            (IDLE_TIMEOUT_ENV, "250"),
        ]))
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
        let settings = Settings::from_env(&env(&[
            (ADDR_ENV, "127.0.0.1:1"),
            (ADDR_ENV, "[::1]:9000"),
            (BACKLOG_ENV, "16"),
        ]))
        .unwrap();
        assert_eq!(settings.addr, "[::1]:9000".parse().unwrap());
        assert_eq!(settings.backlog, 16);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let err = Settings::from_env(&env(&[(ADDR_ENV, "localhost")])).unwrap_err();
        assert!(err.to_string().contains(ADDR_ENV), "{err}");
        for name in [
            BACKLOG_ENV,
            MAX_REUSE_ENV,
            MAX_CONCURRENT_REUSE_ENV,
            IDLE_TIMEOUT_ENV,
        ] {
            for bad in ["0", "-1", "many"] {
                let err = Settings::from_env(&env(&[(name, bad)])).unwrap_err();
                assert!(err.to_string().contains(name), "{err}");
            }
        }
    }
}
