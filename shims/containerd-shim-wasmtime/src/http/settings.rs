//! Where and how the HTTP server listens, from the container's environment (`process.env`).

use std::net::SocketAddr;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub addr: SocketAddr,
    pub backlog: u32,
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
        let backlog = match lookup(BACKLOG_ENV) {
            None => DEFAULT_BACKLOG,
            Some(value) => match value.parse() {
                Ok(backlog) if backlog > 0 => backlog,
                _ => anyhow::bail!("{BACKLOG_ENV}={value:?} is not a positive integer"),
            },
        };
        Ok(Self { addr, backlog })
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
        for bad in ["0", "-1", "many"] {
            let err = Settings::from_env(&env(&[(BACKLOG_ENV, bad)])).unwrap_err();
            assert!(err.to_string().contains(BACKLOG_ENV), "{err}");
        }
    }
}
