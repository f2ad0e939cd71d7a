//! Spin's HTTP routing: which component a request path goes to, and the `spin-*` headers
//! the component is told about the match with.
//!
//! The rules are those of Spin's router (its `spin-http-routes` crate, matching with the
//! `routefinder` 0.5 crate) and of its HTTP trigger's request headers:
//!
//! - A route is `/`-separated segments. A segment is a literal, or `:name`, a parameter
//!   matching any one path segment. A route ending in `/...` (or `/*`) also matches every
//!   path below its prefix, and the prefix itself.
//! - Leading, trailing and repeated slashes in a route do not count, and neither do
//!   leading or trailing slashes in a path: `/foo` matches `/foo/`.
//! - When several routes match, the most specific wins: going along the segments, a
//!   literal beats a parameter, which beats the trailing wildcard; a route that ends where
//!   another goes on wins (`/foo` beats `/foo/...`). Two equally specific routes: the one
//!   that came first in the manifest wins.
//! - The same route written twice: the later trigger wins and the earlier is never used
//!   (Spin logs it as an error, and so [`Router::duplicates`] lists it).
//!
//! Where Spin's router accepts a route that it cannot mean (`...` or `*` in the middle,
//! `.`/`..` segments, `:name.ext`), this router refuses it as invalid instead; see
//! [`validate_route`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

/// Paths under this prefix are answered by the Spin runtime itself (health and info), so
/// routes under it are never reached.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// The names of the headers [`spin_headers`] gives, as Spin sends them (lower case).
pub mod header {
    /// The URL of the request: scheme, host and path with its query.
    pub const FULL_URL: &str = "spin-full-url";
    /// The part of the path that the trailing wildcard matched.
    pub const PATH_INFO: &str = "spin-path-info";
    /// The route that matched, with the application base.
    pub const MATCHED_ROUTE: &str = "spin-matched-route";
    /// The route as written in the manifest, without its trailing `/...`.
    pub const COMPONENT_ROUTE: &str = "spin-component-route";
    /// The route as written in the manifest.
    pub const RAW_COMPONENT_ROUTE: &str = "spin-raw-component-route";
    /// The application's base path.
    pub const BASE_PATH: &str = "spin-base-path";
    /// The client's socket address.
    pub const CLIENT_ADDR: &str = "spin-client-addr";
    /// Followed by a parameter's name: the path segment the parameter matched.
    pub const PATH_MATCH_PREFIX: &str = "spin-path-match-";
}

/// A route or base that cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A trigger's route is not valid.
    InvalidRoute {
        /// The route as written.
        route: String,
        /// The component the route is for, when known.
        component: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// The application's base path is not valid.
    InvalidBase {
        /// The base as given.
        base: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRoute {
                route,
                component: Some(component),
                reason,
            } => write!(
                f,
                "{route:?} (the route of component {component:?}) is not a valid route: {reason}"
            ),
            Self::InvalidRoute {
                route,
                component: None,
                reason,
            } => write!(f, "{route:?} is not a valid route: {reason}"),
            Self::InvalidBase { base, reason } => {
                write!(f, "{base:?} is not a valid base path: {reason}")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// Checks a route as written in a `[[trigger.http]]` (without the application base).
///
/// Besides what Spin's router refuses (a named wildcard `*name`, a parameter without a
/// name), this refuses what Spin's router would take in a sense nobody means:
/// `...` or `*` anywhere but at the end (Spin reads a `...` segment as literal dots glued to
/// the segment before it, and a `*` there panics its router), `.` and `..` segments, and
/// parameters followed by a dot (`:name.ext`, which Spin splits at the dot). Parameter
/// names are restricted to ASCII letters, digits, `_` and `-` because they become header
/// names, and may not repeat within a route.
pub fn validate_route(route: &str) -> Result<(), RouteError> {
    Pattern::parse(&based_route("", route))
        .map(drop)
        .map_err(|reason| RouteError::InvalidRoute {
            route: route.to_owned(),
            component: None,
            reason,
        })
}

/// Checks an application base path (`[application.trigger.http] base`): a literal path.
pub fn validate_base(base: &str) -> Result<(), RouteError> {
    let invalid = |reason: String| RouteError::InvalidBase {
        base: base.to_owned(),
        reason,
    };
    let pattern = Pattern::parse(&absolutize(base)).map_err(invalid)?;
    if pattern.wildcard || pattern.segments.iter().any(|s| !s.is_literal()) {
        return Err(invalid(
            "a base is a literal path, without parameters or wildcards".to_owned(),
        ));
    }
    Ok(())
}

/// A route that will never be used because another trigger has the same one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The unused route, as written in the manifest.
    pub route: String,
    /// The component the unused route was for.
    pub unused_component: String,
    /// The component that gets the requests on that route.
    pub used_component: String,
}

/// Routes request paths to components, as Spin does.
#[derive(Debug, Clone)]
pub struct Router {
    base: String,
    /// In the order they are tried: most specific first.
    entries: Vec<Entry>,
    duplicates: Vec<DuplicateRoute>,
}

#[derive(Debug, Clone)]
struct Entry {
    component: String,
    raw_route: String,
    based_route: String,
    pattern: Pattern,
}

impl Router {
    /// Builds a router from `(route, component id)` pairs in manifest order, under the
    /// application base (`"/"` when the application has none).
    ///
    /// Private routes (`route = { private = true }`) have no path: leave them out.
    /// A route given twice is not an error (as in Spin): the later pair wins, and the
    /// earlier one is listed by [`Router::duplicates`].
    pub fn new<R, C>(
        base: &str,
        routes: impl IntoIterator<Item = (R, C)>,
    ) -> Result<Self, RouteError>
    where
        R: Into<String>,
        C: Into<String>,
    {
        validate_base(base)?;
        // Spin 2 prefixed a base without a leading slash with one; Spin 3 allows only "/".
        let base = absolutize(base);

        // Spin removes duplicates by the route as written: the last trigger wins, in the
        // place of the first.
        let mut deduplicated: Vec<(String, String)> = Vec::new();
        let mut position: HashMap<String, usize> = HashMap::new();
        let mut duplicates = Vec::new();
        for (route, component) in routes {
            let (route, component) = (route.into(), component.into());
            match position.get(&route) {
                Some(&i) => {
                    let unused = std::mem::replace(&mut deduplicated[i].1, component.clone());
                    duplicates.push(DuplicateRoute {
                        route: route.clone(),
                        unused_component: unused,
                        used_component: component,
                    });
                }
                None => {
                    position.insert(route.clone(), deduplicated.len());
                    deduplicated.push((route, component));
                }
            }
        }

        let mut entries: Vec<Entry> = Vec::with_capacity(deduplicated.len());
        for (raw_route, component) in deduplicated {
            let based_route = based_route(&base, &raw_route);
            let pattern =
                Pattern::parse(&based_route).map_err(|reason| RouteError::InvalidRoute {
                    route: raw_route.clone(),
                    component: Some(component.clone()),
                    reason,
                })?;
            // Routes written differently but matching the same paths (`/a` and `/a/`,
            // `/:x` and `/:y`): Spin keeps the first without saying so; we say so.
            if let Some(first) = entries.iter().find(|e| e.pattern.same_paths(&pattern)) {
                duplicates.push(DuplicateRoute {
                    route: raw_route.clone(),
                    unused_component: component.clone(),
                    used_component: first.component.clone(),
                });
            }
            entries.push(Entry {
                component,
                raw_route,
                based_route,
                pattern,
            });
        }
        // Stable: among equally specific routes the first in the manifest stays first.
        entries.sort_by(|a, b| a.pattern.precedence(&b.pattern));

        Ok(Self {
            base,
            entries,
            duplicates,
        })
    }

    /// The application base path the routes are under.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Routes that will never be used because another trigger has the same route.
    pub fn duplicates(&self) -> &[DuplicateRoute] {
        &self.duplicates
    }

    /// The `(route as written, component id)` pairs, in the order they are tried.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.raw_route.as_str(), e.component.as_str()))
    }

    /// Whether a route is under [`WELL_KNOWN_PREFIX`], which Spin answers itself.
    pub fn has_reserved_route(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.based_route.starts_with(WELL_KNOWN_PREFIX))
    }

    /// The best route for a request path (as sent, not percent-decoded), or `None`.
    /// A query string, if the path still has one, is ignored.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let path = path.split_once('?').map_or(path, |(path, _query)| path);
        let trimmed = path.trim_matches('/');
        let segments: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        self.entries.iter().find_map(|entry| {
            let captures = entry.pattern.matches(&segments)?;
            Some(RouteMatch {
                component_id: entry.component.clone(),
                matched_route: entry.based_route.clone(),
                raw_route: entry.raw_route.clone(),
                path_info: path_info(captures.rest.as_deref(), path),
                params: captures.params,
                base: self.base.clone(),
            })
        })
    }
}

/// Spin's `spin-path-info`: what the trailing wildcard matched, with a leading slash, and
/// a trailing one if the path had one; empty for routes without a wildcard.
fn path_info(rest: Option<&str>, path: &str) -> String {
    let Some(rest) = rest else {
        return String::new();
    };
    match (rest.is_empty(), path.ends_with('/')) {
        (true, false) => String::new(),
        (true, true) => "/".to_owned(),
        (false, false) => format!("/{rest}"),
        (false, true) => format!("/{rest}/"),
    }
}

/// How a request path matched a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    component_id: String,
    matched_route: String,
    raw_route: String,
    path_info: String,
    params: Vec<(String, String)>,
    base: String,
}

impl RouteMatch {
    /// The component the request goes to.
    pub fn component_id(&self) -> &str {
        &self.component_id
    }

    /// `spin-matched-route`: the route with the base, as Spin joins them (one trailing
    /// slash dropped from each, so the root route `/` under base `/` is `""`).
    pub fn matched_route(&self) -> &str {
        &self.matched_route
    }

    /// `spin-raw-component-route`: the route exactly as written in the manifest.
    pub fn raw_component_route(&self) -> &str {
        &self.raw_route
    }

    /// `spin-component-route`: the route as written without its trailing `/...` (so `""`
    /// for `/...`). Spin strips only `/...`: a route ending in `/*` keeps it.
    pub fn component_route(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }

    /// `spin-path-info`: the part of the path below the route's prefix, for a wildcard
    /// route (`/bar` for `/foo/bar` on `/foo/...`); empty for other routes.
    pub fn path_info(&self) -> &str {
        &self.path_info
    }

    /// The parameters' names (without the `:`) and values, in route order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of one parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The application base path (`spin-base-path`).
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// Spin's URL for `spin-full-url`: `{scheme}://{host}{path and query}`, where `host` is the
/// request's `Host` header (Spin uses `localhost` when there is none) and `scheme` the
/// server's (`http` or `https`).
pub fn full_url(scheme: &str, host: &str, path_and_query: &str) -> String {
    format!("{scheme}://{host}{path_and_query}")
}

/// The headers Spin adds to a request for the component it routed it to, with Spin's names,
/// values and order. `full_url` is the whole URL with its query (see [`full_url`]).
///
/// A parameter's header is `spin-path-match-` and its name in lower case with `_` turned to
/// `-` (Spin upper-cases `SPIN_PATH_MATCH_<NAME>` and then makes it a header name).
pub fn spin_headers(
    route_match: &RouteMatch,
    full_url: &str,
    client_addr: SocketAddr,
) -> Vec<(String, String)> {
    let mut headers = vec![
        (header::PATH_INFO, route_match.path_info().to_owned()),
        (header::FULL_URL, full_url.to_owned()),
        (
            header::MATCHED_ROUTE,
            route_match.matched_route().to_owned(),
        ),
        (header::BASE_PATH, route_match.base().to_owned()),
        (
            header::RAW_COMPONENT_ROUTE,
            route_match.raw_component_route().to_owned(),
        ),
        (
            header::COMPONENT_ROUTE,
            route_match.component_route().to_owned(),
        ),
        (header::CLIENT_ADDR, client_addr.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect::<Vec<_>>();
    for (name, value) in route_match.params() {
        let name = name.to_ascii_lowercase().replace('_', "-");
        headers.push((
            format!("{}{name}", header::PATH_MATCH_PREFIX),
            value.clone(),
        ));
    }
    headers
}

/// Joins base and route as Spin does: the route gets a leading slash if it lacks one, and
/// each loses one trailing slash.
fn based_route(base: &str, route: &str) -> String {
    let route = absolutize(route);
    format!(
        "{}{}",
        strip_one_trailing_slash(base),
        strip_one_trailing_slash(&route)
    )
}

fn absolutize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn strip_one_trailing_slash(s: &str) -> &str {
    s.strip_suffix('/').unwrap_or(s)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl Segment {
    fn is_literal(&self) -> bool {
        matches!(self, Self::Literal(_))
    }
}

/// A parsed route: its segments, and whether it ends in a wildcard.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<Segment>,
    wildcard: bool,
}

/// What a path's match captured.
struct Captures {
    params: Vec<(String, String)>,
    /// What the trailing wildcard matched, without the slashes around it; `None` for
    /// routes without one.
    rest: Option<String>,
}

impl Pattern {
    /// Parses a route with its base; the error is the reason it is invalid.
    fn parse(based: &str) -> Result<Self, String> {
        let (prefix, wildcard) = match based
            .strip_suffix("/...")
            .or_else(|| based.strip_suffix("/*"))
        {
            Some(prefix) => (prefix, true),
            None => (based, false),
        };
        let mut segments = Vec::new();
        // Empty pieces are the slashes that do not count (repeated ones).
        for piece in prefix.split('/').filter(|p| !p.is_empty()) {
            segments.push(Self::parse_segment(piece)?);
        }
        let mut names: Vec<&str> = Vec::new();
        for segment in &segments {
            if let Segment::Param(name) = segment {
                if names.contains(&name.as_str()) {
                    return Err(format!("the parameter `:{name}` appears twice"));
                }
                names.push(name);
            }
        }
        Ok(Self { segments, wildcard })
    }

    fn parse_segment(piece: &str) -> Result<Segment, String> {
        match piece {
            "..." => {
                return Err(
                    "`...` may only end a route (as `/...`), not stand in the middle".to_owned(),
                );
            }
            "*" => {
                return Err(
                    "`*` may only end a route (as `/*`), not stand in the middle".to_owned(),
                );
            }
            "." | ".." => return Err(format!("`{piece}` segments are not allowed")),
            _ => {}
        }
        if piece.starts_with('*') {
            return Err(format!(
                "a wildcard has no name: end the route with `/...` instead of `{piece}`"
            ));
        }
        let Some(name) = piece.strip_prefix(':') else {
            return Ok(Segment::Literal(piece.to_owned()));
        };
        if name.is_empty() {
            return Err("a parameter needs a name after `:`".to_owned());
        }
        if name.contains('.') {
            return Err(format!(
                "parameters followed by a dot (`{piece}`) are not supported"
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "the parameter name `{name}` may only have ASCII letters, digits, `_` and `-`"
            ));
        }
        Ok(Segment::Param(name.to_owned()))
    }

    /// Matches the segments of a path (its slashes trimmed, then split at each slash).
    fn matches(&self, path: &[&str]) -> Option<Captures> {
        let fits = if self.wildcard {
            path.len() >= self.segments.len()
        } else {
            path.len() == self.segments.len()
        };
        if !fits {
            return None;
        }
        let mut params = Vec::new();
        for (segment, piece) in self.segments.iter().zip(path) {
            match segment {
                Segment::Literal(text) if text == piece => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), (*piece).to_owned())),
            }
        }
        let rest = self.wildcard.then(|| path[self.segments.len()..].join("/"));
        Some(Captures { params, rest })
    }

    /// The order routes are tried in (`Less` first): along the segments, a literal before a
    /// parameter before the wildcard; a route that ends before one that goes on.
    fn precedence(&self, other: &Self) -> Ordering {
        let rank = |p: &Self, i: usize| match p.segments.get(i) {
            Some(Segment::Literal(_)) => Some(0),
            Some(Segment::Param(_)) => Some(1),
            None if p.wildcard && i == p.segments.len() => Some(2),
            None => None,
        };
        for i in 0.. {
            match (rank(self, i), rank(other, i)) {
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) => return a.cmp(&b),
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (None, None) => return Ordering::Equal,
            }
        }
        unreachable!("the loop returns once both routes have ended")
    }

    /// Whether two routes match exactly the same paths (parameter names aside).
    fn same_paths(&self, other: &Self) -> bool {
        self.wildcard == other.wildcard
            && self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Param(_), Segment::Param(_)) => true,
                    _ => false,
                })
    }
}

#[cfg(test)]
mod tests;
