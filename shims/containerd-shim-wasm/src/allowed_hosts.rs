//! Allowed outbound hosts, in the syntax Spin's `allowed_outbound_hosts` uses:
//! `scheme://host[:port]`, where
//!
//! - `scheme` is a URL scheme (`http`, `https`, `mysql`, ...) or `*` for any;
//! - `host` is a name (`example.com`), `*.` before a name for its subdomains (`*.example.com`),
//!   `*` for any host, an IP address (`127.0.0.1`, `[::1]`) or an IP network in CIDR form
//!   (`10.0.0.0/8`);
//! - `port` is a number, a range `lo..hi` (`hi` excluded, as Rust writes it), or `*` for any;
//!   left out, the scheme's well-known port (`http` 80, `https` 443, ...), so a scheme without
//!   one needs a port.
//!
//! A request goes out when one entry allows its scheme, host and port. A socket connection
//! has no scheme and no name, only an address: an entry allows it when its host is `*`, that
//! IP address or a network holding it (names are not resolved for sockets: a name allows only
//! requests that carry it, as outgoing HTTP does).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A refusal of an entry, naming it.
#[derive(Debug, thiserror::Error)]
#[error("allowed outbound host {entry:?}: {why}")]
pub struct AllowedHostError {
    entry: String,
    why: String,
}

/// The parsed `allowed_outbound_hosts` of a component (or container).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    text: String,
    scheme: Option<String>,
    host: HostPattern,
    ports: Ports,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Name(String),
    Subdomains(String),
    Network(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    Any,
    /// First and last port, both held.
    Range(u16, u16),
}

impl AllowedHosts {
    /// Parses every entry; the first that is not valid is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowedHostError> {
        let entries = entries
            .iter()
            .map(|entry| AllowedHost::parse(entry.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Whether a request to `scheme://host:port` may go out (`host` as the URL has it; an IPv6
    /// address with or without brackets).
    pub fn allows_request(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|entry| {
            entry
                .scheme
                .as_ref()
                .is_none_or(|s| s.eq_ignore_ascii_case(scheme))
                && entry.ports.holds(port)
                && match ip {
                    Some(ip) => entry.host.holds_ip(ip),
                    None => entry.host.holds_name(host),
                }
        })
    }

    /// Whether a socket may connect to (or send to) `addr`.
    pub fn allows_socket(&self, addr: SocketAddr) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.ports.holds(addr.port()) && entry.host.holds_ip(addr.ip()))
    }

    /// Whether any entry could allow a socket, so that name lookups and sockets are worth
    /// offering at all.
    pub fn allows_some_socket(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| matches!(entry.host, HostPattern::Any | HostPattern::Network(..)))
    }
}

impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let texts: Vec<&str> = self.entries.iter().map(|e| e.text.as_str()).collect();
        write!(f, "[{}]", texts.join(", "))
    }
}

/// The port a scheme uses when a URL names none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "mysql" => 3306,
        "postgres" | "postgresql" => 5432,
        "redis" => 6379,
        "rediss" => 6380,
        "mqtt" => 1883,
        "mqtts" => 8883,
        _ => return None,
    })
}

impl AllowedHost {
    fn parse(text: &str) -> Result<Self, AllowedHostError> {
        let fail = |why: &str| AllowedHostError {
            entry: text.to_string(),
            why: why.to_string(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| fail("no scheme: write scheme://host, e.g. https://example.com"))?;
        let scheme = match scheme {
            "*" => None,
            s if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                Some(s.to_ascii_lowercase())
            }
            _ => return Err(fail("the scheme is not a URL scheme or *")),
        };
        if rest.contains(['/', '?', '#']) && !is_cidr(rest) {
            return Err(fail(
                "a path, query or fragment is not allowed: only scheme://host[:port]",
            ));
        }
        let (host, port) = split_port(rest);
        let host = parse_host(host).map_err(|why| fail(&why))?;
        let ports = match port {
            Some("*") => Ports::Any,
            Some(port) => parse_ports(port).map_err(|why| fail(&why))?,
            None => match scheme.as_deref().and_then(well_known_port) {
                Some(port) => Ports::Range(port, port),
                None => {
                    return Err(fail(
                        "no port, and the scheme has no well-known one: add :port or :*",
                    ));
                }
            },
        };
        Ok(Self {
            text: text.to_string(),
            scheme,
            host,
            ports,
        })
    }
}

fn is_cidr(rest: &str) -> bool {
    let (host, _) = split_port(rest);
    host.contains('/')
}

/// `host[:port]`, where an IPv6 host is in brackets (a CIDR network too: `[fd00::/8]:*`).
fn split_port(rest: &str) -> (&str, Option<&str>) {
    if let Some(inner) = rest.strip_prefix('[')
        && let Some((host, after)) = inner.split_once(']')
    {
        return (host, after.strip_prefix(':'));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    }
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some((ip, bits)) = host.split_once('/') {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is no IP address, so /{bits} is no network"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|bits| *bits <= max)
            .ok_or_else(|| format!("/{bits}: a prefix length is 0 to {max}"))?;
        return Ok(HostPattern::Network(ip, bits));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Network(
            ip,
            if ip.is_ipv4() { 32 } else { 128 },
        ));
    }
    let (subdomains, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host),
    };
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid {
        return Err(format!(
            "{host:?} is not a host name, *.name, *, an IP address or a CIDR network"
        ));
    }
    if name == "self" {
        return Err(
            "\"self\" (requests to the application itself) is not supported: name the host"
                .to_string(),
        );
    }
    let name = name.to_ascii_lowercase();
    Ok(if subdomains {
        HostPattern::Subdomains(name)
    } else {
        HostPattern::Name(name)
    })
}

fn parse_ports(port: &str) -> Result<Ports, String> {
    let number = |text: &str| {
        text.parse::<u16>()
            .map_err(|_| format!("{text:?} is no port number (0 to 65535)"))
    };
    match port.split_once("..") {
        Some((lo, hi)) => {
            let (lo, hi) = (number(lo)?, number(hi)?);
            if lo >= hi {
                return Err(format!("the port range {port} is empty"));
            }
            Ok(Ports::Range(lo, hi - 1))
        }
        None => {
            let port = number(port)?;
            Ok(Ports::Range(port, port))
        }
    }
}

impl Ports {
    fn holds(&self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::Range(first, last) => (*first..=*last).contains(&port),
        }
    }
}

impl HostPattern {
    fn holds_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            HostPattern::Any => true,
            HostPattern::Name(name) => host == *name,
            HostPattern::Subdomains(name) => host
                .strip_suffix(name.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
            HostPattern::Network(..) => false,
        }
    }

    fn holds_ip(&self, ip: IpAddr) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Name(_) | HostPattern::Subdomains(_) => false,
            HostPattern::Network(net, bits) => in_network(ip, *net, *bits),
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries).unwrap()
    }

    fn error(entry: &str) -> String {
        AllowedHosts::parse(&[entry]).unwrap_err().to_string()
    }

    #[test]
    fn names_schemes_and_ports() {
        let allowed = hosts(&["https://example.com", "http://*.internal:8080"]);
        assert!(allowed.allows_request("https", "example.com", 443));
        assert!(allowed.allows_request("HTTPS", "Example.COM", 443));
        assert!(!allowed.allows_request("http", "example.com", 80));
        assert!(!allowed.allows_request("https", "example.com", 8443));
        assert!(!allowed.allows_request("https", "www.example.com", 443));
        assert!(allowed.allows_request("http", "api.internal", 8080));
        assert!(allowed.allows_request("http", "a.b.internal", 8080));
        assert!(!allowed.allows_request("http", "internal", 8080));
        assert!(!allowed.allows_request("http", "xinternal", 8080));
        assert!(!allowed.allows_request("http", "api.internal", 80));
    }

    #[test]
    fn wildcards_and_ranges() {
        let allowed = hosts(&["*://*:*"]);
        assert!(allowed.allows_request("ftp", "anything", 21));
        assert!(allowed.allows_socket("10.1.2.3:9".parse().unwrap()));
        let allowed = hosts(&["http://127.0.0.1:8000..8002"]);
        assert!(allowed.allows_request("http", "127.0.0.1", 8001));
        assert!(!allowed.allows_request("http", "127.0.0.1", 8002));
        assert!(!allowed.allows_request("http", "localhost", 8001));
        assert!(allowed.allows_socket("127.0.0.1:8000".parse().unwrap()));
        assert!(!allowed.allows_socket("127.0.0.2:8000".parse().unwrap()));
        let allowed = hosts(&["tcp://10.0.0.0/8:*", "*://[::1]:7"]);
        assert!(allowed.allows_socket("10.200.0.1:1".parse().unwrap()));
        assert!(!allowed.allows_socket("11.0.0.1:1".parse().unwrap()));
        assert!(allowed.allows_socket("[::1]:7".parse().unwrap()));
        assert!(allowed.allows_request("http", "[::1]", 7));
        assert!(allowed.allows_socket("[::ffff:10.0.0.1]:5".parse().unwrap()));
        assert!(allowed.allows_some_socket());
        assert!(!hosts(&["https://example.com"]).allows_some_socket());
        assert!(!hosts(&[]).allows_request("http", "localhost", 80));
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(error("example.com").contains("\"example.com\": no scheme"));
        assert!(error("https://example.com/path").contains("path"));
        assert!(error("foo://example.com").contains("no port"));
        assert!(error("http://ex ample.com").contains("not a host name"));
        assert!(error("http://example.com:99999").contains("no port number"));
        assert!(error("http://example.com:9..9").contains("empty"));
        assert!(error("http://10.0.0.0/33:*").contains("prefix length"));
        assert!(error("http://self").contains("not supported"));
        assert_eq!(
            hosts(&["https://a.com", "*://*:*"]).to_string(),
            "[https://a.com, *://*:*]"
        );
    }
}
