//! Each test says which Spin behaviour it pins, from Spin's source:
//! `crates/routes/src/lib.rs` (the router, and its tests), `crates/trigger-http/src/headers.rs`
//! (the headers, and its tests), and routefinder 0.5.4's matching and ordering, which
//! Spin's router delegates to.

use std::net::SocketAddr;

use super::*;

fn router(base: &str, routes: &[(&str, &str)]) -> Router {
    Router::new(base, routes.iter().copied()).expect("valid routes")
}

/// The component a path goes to, or `None`.
fn to(router: &Router, path: &str) -> Option<String> {
    router.route(path).map(|m| m.component_id().to_owned())
}

fn headers(m: &RouteMatch, full_url: &str) -> Vec<(String, String)> {
    let client: SocketAddr = "127.0.0.1:8777".parse().unwrap();
    spin_headers(m, full_url, client)
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn exact_routes() {
    // Spin's test_router_exact.
    let r = router("/", &[("/foo", "foo"), ("/foo/bar", "foobar")]);
    assert_eq!(to(&r, "/foo").as_deref(), Some("foo"));
    assert_eq!(to(&r, "/foo/bar").as_deref(), Some("foobar"));
    // An exact route matches neither below it nor a longer name.
    assert_eq!(to(&r, "/foo/bar/baz"), None);
    assert_eq!(to(&r, "/foobar"), None);
}

#[test]
fn exact_beats_wildcard() {
    // Spin's test_router_exact_beats_wildcard.
    let r = router("/", &[("/one", "one_exact"), ("/...", "wildcard")]);
    assert_eq!(to(&r, "/one").as_deref(), Some("one_exact"));
    assert_eq!(to(&r, "/two").as_deref(), Some("wildcard"));

    // The exact route wins over a wildcard with the same prefix, whatever the order;
    // below the prefix the wildcard has it.
    for routes in [
        [("/foo/...", "wild"), ("/foo", "exact")],
        [("/foo", "exact"), ("/foo/...", "wild")],
    ] {
        let r = router("/", &routes);
        assert_eq!(to(&r, "/foo").as_deref(), Some("exact"));
        assert_eq!(to(&r, "/foo/").as_deref(), Some("exact"));
        assert_eq!(to(&r, "/foo/bar").as_deref(), Some("wild"));
    }
}

#[test]
fn most_specific_wildcard_wins() {
    // Spin's test_router_respects_longest_match: the longest prefix, in any order.
    let wildcards = [
        ("/...", "root"),
        ("/api/...", "api"),
        ("/api/users/...", "users"),
    ];
    let mut reversed = wildcards;
    reversed.reverse();
    for routes in [wildcards, reversed] {
        let r = router("/", &routes);
        assert_eq!(to(&r, "/api/users/1").as_deref(), Some("users"));
        assert_eq!(to(&r, "/api/users").as_deref(), Some("users"));
        assert_eq!(to(&r, "/api/orders/1").as_deref(), Some("api"));
        assert_eq!(to(&r, "/api").as_deref(), Some("api"));
        assert_eq!(to(&r, "/apix").as_deref(), Some("root"));
        assert_eq!(to(&r, "/other/thing").as_deref(), Some("root"));
        assert_eq!(to(&r, "/").as_deref(), Some("root"));
        // Tried most specific first.
        let order: Vec<&str> = r.routes().map(|(_, c)| c).collect();
        assert_eq!(order, ["users", "api", "root"]);
    }
}

#[test]
fn parameter_routes() {
    // Spin's named_wildcard_is_captured: `:name` matches one segment.
    let r = router("/", &[("/1/:two/3", "a"), ("/users/:id", "user")]);
    let m = r.route("/1/2/3").unwrap();
    assert_eq!(m.component_id(), "a");
    assert_eq!(m.param("two"), Some("2"));
    assert_eq!(m.params(), [("two".to_owned(), "2".to_owned())]);

    assert_eq!(r.route("/users/42").unwrap().param("id"), Some("42"));
    // Exactly one segment, not none and not two.
    assert_eq!(to(&r, "/users"), None);
    assert_eq!(to(&r, "/users/"), None);
    assert_eq!(to(&r, "/users/42/posts"), None);

    // A parameter before a trailing wildcard.
    let r = router("/", &[("/1/:two/...", "a")]);
    let m = r.route("/1/2/3").unwrap();
    assert_eq!(m.param("two"), Some("2"));
    assert_eq!(m.path_info(), "/3");
}

#[test]
fn literal_beats_parameter_beats_wildcard() {
    // routefinder's ordering (its `it_works` test), which Spin's router uses: segment by
    // segment, a literal before a parameter before the wildcard; a shorter route before
    // one that goes on.
    let r = router(
        "/",
        &[
            ("/...", "wild"),
            ("/hello", "hello"),
            ("/:greeting", "greeting"),
            ("/hey/:world", "hey-world"),
            ("/hey/earth", "hey-earth"),
            ("/:greeting/:world/...", "greeting-world"),
        ],
    );
    assert_eq!(to(&r, "/hello").as_deref(), Some("hello"));
    assert_eq!(to(&r, "/hey").as_deref(), Some("greeting"));
    assert_eq!(to(&r, "/hey/earth").as_deref(), Some("hey-earth"));
    assert_eq!(to(&r, "/hey/mars").as_deref(), Some("hey-world"));
    assert_eq!(to(&r, "/hi/mars").as_deref(), Some("greeting-world"));
    let m = r.route("/hey/earth/wildcard/stuff").unwrap();
    assert_eq!(m.component_id(), "greeting-world");
    assert_eq!(m.param("greeting"), Some("hey"));
    assert_eq!(m.param("world"), Some("earth"));
    assert_eq!(m.path_info(), "/wildcard/stuff");
    assert_eq!(to(&r, "/").as_deref(), Some("wild"));

    // routefinder's several_params: a literal in the middle wins over a parameter there.
    let r = router(
        "/",
        &[("/:a/:b/:c", "params"), ("/:p1/specific/:p2", "specific")],
    );
    assert_eq!(to(&r, "/hi/specific/anything").as_deref(), Some("specific"));
    assert_eq!(to(&r, "/hi/there/hey").as_deref(), Some("params"));
}

#[test]
fn equally_specific_routes_first_wins() {
    // routefinder never orders two routes as equal: the one added later goes after, and
    // Spin adds them in manifest order.
    let r = router("/", &[("/:a", "first"), ("/:b", "second")]);
    assert_eq!(to(&r, "/x").as_deref(), Some("first"));
    assert_eq!(r.route("/x").unwrap().param("a"), Some("x"));
}

#[test]
fn root_route_and_root_wildcard() {
    // `/` matches only the root; `/...` everything, the root too (Spin's
    // test_router_wildcard); with both, the root goes to `/`.
    let r = router("/", &[("/", "root")]);
    assert_eq!(to(&r, "/").as_deref(), Some("root"));
    assert_eq!(to(&r, "").as_deref(), Some("root"));
    assert_eq!(to(&r, "/x"), None);

    let r = router("/", &[("/...", "all")]);
    for path in ["/", "/foo/bar", "/abc/"] {
        assert_eq!(to(&r, path).as_deref(), Some("all"), "{path}");
    }

    let r = router("/", &[("/...", "all"), ("/", "root")]);
    assert_eq!(to(&r, "/").as_deref(), Some("root"));
    assert_eq!(to(&r, "/x").as_deref(), Some("all"));
}

#[test]
fn root_route_headers() {
    // Spin joins base "/" and route "/" with one trailing slash off each: the matched
    // route is "" (routes/src/lib.rs sanitize_with_base); the raw route stays "/".
    let r = router("/", &[("/", "root")]);
    let m = r.route("/").unwrap();
    let h = headers(&m, "http://localhost/");
    assert_eq!(header(&h, "spin-matched-route"), Some(""));
    assert_eq!(header(&h, "spin-raw-component-route"), Some("/"));
    assert_eq!(header(&h, "spin-component-route"), Some("/"));
    assert_eq!(header(&h, "spin-path-info"), Some(""));
    assert_eq!(header(&h, "spin-base-path"), Some("/"));
}

#[test]
fn root_wildcard_headers() {
    // `/...`: the component route is "" (Spin strips "/..." from the raw route), and the
    // path info is the whole path (trailing_wildcard_is_captured).
    let r = router("/", &[("/...", "all")]);
    let m = r.route("/1/2/3").unwrap();
    let h = headers(&m, "http://localhost/1/2/3");
    assert_eq!(header(&h, "spin-matched-route"), Some("/..."));
    assert_eq!(header(&h, "spin-raw-component-route"), Some("/..."));
    assert_eq!(header(&h, "spin-component-route"), Some(""));
    assert_eq!(header(&h, "spin-path-info"), Some("/1/2/3"));
    // The root path: the wildcard matched nothing, but the path ends in a slash.
    assert_eq!(r.route("/").unwrap().path_info(), "/");
}

#[test]
fn trailing_slashes() {
    // routefinder ignores a path's trailing slashes (trailing_slashes_are_ignored), and
    // so does a route's: `/a` and `/a/` match both paths.
    for route in ["/a", "/a/"] {
        let r = router("/", &[(route, "a")]);
        assert_eq!(to(&r, "/a").as_deref(), Some("a"), "{route}");
        assert_eq!(to(&r, "/a/").as_deref(), Some("a"), "{route}");
    }
    // The matched route loses the route's trailing slash, the raw route keeps it.
    let r = router("/", &[("/a/", "a")]);
    let m = r.route("/a").unwrap();
    assert_eq!(m.matched_route(), "/a");
    assert_eq!(m.raw_component_route(), "/a/");
    assert_eq!(m.component_route(), "/a/");

    // Spin's trailing_wildcard_respects_trailing_slash: the path info keeps the path's
    // trailing slash, which routefinder itself drops.
    let r = router("/", &[("/test/...", "comp")]);
    for (path, info) in [
        ("/test", ""),
        ("/test/", "/"),
        ("/test/hello", "/hello"),
        ("/test/hello/", "/hello/"),
    ] {
        assert_eq!(r.route(path).unwrap().path_info(), info, "{path}");
    }
}

#[test]
fn repeated_slashes() {
    // routefinder 0.5.4 consumes one slash per route slash: a doubled slash in a path is
    // an empty segment, which a literal does not match and a wildcard keeps.
    let r = router("/", &[("/a/b", "exact"), ("/a/...", "wild")]);
    assert_eq!(to(&r, "/a//b").as_deref(), Some("wild"));
    assert_eq!(r.route("/a//b").unwrap().path_info(), "//b");
    // Repeated slashes in a route do not count.
    let r = router("/", &[("//a//b", "ab")]);
    assert_eq!(to(&r, "/a/b").as_deref(), Some("ab"));
}

#[test]
fn base_path() {
    // Spin's test_router_respects_base: routes are under the base.
    let r = router("/base", &[("/foo", "foo"), ("/foo/bar", "foobar")]);
    assert_eq!(r.base(), "/base");
    assert_eq!(to(&r, "/base/foo").as_deref(), Some("foo"));
    assert_eq!(to(&r, "/base/foo/bar").as_deref(), Some("foobar"));
    assert_eq!(to(&r, "/foo"), None);

    // A trailing slash on the base counts once, as on a route; a base without a leading
    // slash gets one (Spin 2's HTTP trigger did this).
    for base in ["/base/", "base"] {
        let r = router(base, &[("/foo/...", "foo")]);
        assert_eq!(to(&r, "/base/foo/x").as_deref(), Some("foo"), "{base}");
    }

    // Headers under a base, as Spin 2 sent them (test_default_headers_with_base_path):
    // the matched route has the base, the component routes do not.
    let r = router("/base", &[("/foo/...", "foo")]);
    let m = r.route("/base/foo/bar").unwrap();
    let h = headers(&m, "https://fermyon.dev/base/foo/bar?key1=value1");
    assert_eq!(header(&h, "spin-matched-route"), Some("/base/foo/..."));
    assert_eq!(header(&h, "spin-raw-component-route"), Some("/foo/..."));
    assert_eq!(header(&h, "spin-component-route"), Some("/foo"));
    assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
    assert_eq!(header(&h, "spin-base-path"), Some("/base"));
}

#[test]
fn no_match() {
    let r = router("/", &[("/foo", "foo"), ("/api/...", "api")]);
    assert!(r.route("/bar").is_none());
    assert!(r.route("/").is_none());
    assert!(r.route("/ap").is_none());
    let empty = Router::new("/", Vec::<(String, String)>::new()).unwrap();
    assert!(empty.route("/").is_none());
}

#[test]
fn query_string_is_not_part_of_the_path() {
    // Spin routes `uri.path()`; its test_router_wildcard passes a query, which its
    // wildcard swallowed. Here the query is cut off.
    let r = router("/", &[("/...", "all"), ("/exact", "exact")]);
    let m = r.route("/this/should/be/captured?abc=def").unwrap();
    assert_eq!(m.path_info(), "/this/should/be/captured");
    assert_eq!(to(&r, "/exact?x=1").as_deref(), Some("exact"));
}

#[test]
fn literal_segments_with_dots() {
    // routefinder splits literals at dots but matches them as the whole text.
    let r = router(
        "/",
        &[
            ("/favicon.ico", "icon"),
            ("/.well-known/x", "wk"),
            ("/:name", "any"),
        ],
    );
    assert_eq!(to(&r, "/favicon.ico").as_deref(), Some("icon"));
    assert_eq!(to(&r, "/favicon.icox").as_deref(), Some("any"));
    assert_eq!(to(&r, "/.well-known/x").as_deref(), Some("wk"));
}

#[test]
fn route_without_leading_slash() {
    // Spin's absolutize: "foo" is "/foo"; the raw route is kept as written.
    let r = router("/", &[("foo/...", "foo")]);
    let m = r.route("/foo/bar").unwrap();
    assert_eq!(m.matched_route(), "/foo/...");
    assert_eq!(m.raw_component_route(), "foo/...");
    assert_eq!(m.component_route(), "foo");
}

#[test]
fn star_wildcard() {
    // Spin's parse_route takes `/*` like `/...`, but raw_route_or_prefix strips only
    // "/...", so the component route keeps the `/*`.
    let r = router("/", &[("/static/*", "files")]);
    let m = r.route("/static/css/site.css").unwrap();
    assert_eq!(m.path_info(), "/css/site.css");
    assert_eq!(m.component_route(), "/static/*");
    assert_eq!(to(&r, "/static").as_deref(), Some("files"));
}

#[test]
fn duplicate_routes_last_wins() {
    // Spin's duplicate_routes_last_one_wins and duplicate_routes_are_unreachable: the
    // later trigger gets the route, in the earlier one's place; the earlier is reported
    // (Spin logs "...duplicates and will never be used").
    let r = router(
        "/",
        &[
            ("/", "comp-/"),
            ("/foo", "comp-first /foo"),
            ("/foo", "comp-second /foo"),
            ("/whee/...", "comp-/whee/..."),
        ],
    );
    assert_eq!(r.routes().count(), 3);
    assert_eq!(to(&r, "/foo").as_deref(), Some("comp-second /foo"));
    assert_eq!(
        r.duplicates(),
        [DuplicateRoute {
            route: "/foo".to_owned(),
            unused_component: "comp-first /foo".to_owned(),
            used_component: "comp-second /foo".to_owned(),
        }]
    );
}

#[test]
fn differently_written_same_routes_first_wins() {
    // Spin dedups by the text only; `/a` and `/a/` both reach routefinder, whose order
    // puts the first added first. Spin says nothing; we list the unreachable one.
    let r = router("/", &[("/a", "first"), ("/a/", "second")]);
    assert_eq!(to(&r, "/a").as_deref(), Some("first"));
    assert_eq!(
        r.duplicates(),
        [DuplicateRoute {
            route: "/a/".to_owned(),
            unused_component: "second".to_owned(),
            used_component: "first".to_owned(),
        }]
    );
    assert!(
        router("/", &[("/a", "a"), ("/a/...", "b")])
            .duplicates()
            .is_empty()
    );
}

#[test]
fn default_headers() {
    // Spin's test_default_headers (trigger-http/src/headers.rs), with its order.
    let r = router("/", &[("/foo/...", "DUMMY")]);
    let m = r.route("/foo/bar").unwrap();
    let url = full_url("https", "fermyon.dev", "/foo/bar?key1=value1&key2=value2");
    assert_eq!(url, "https://fermyon.dev/foo/bar?key1=value1&key2=value2");
    let expected = [
        ("spin-path-info", "/bar"),
        (
            "spin-full-url",
            "https://fermyon.dev/foo/bar?key1=value1&key2=value2",
        ),
        ("spin-matched-route", "/foo/..."),
        ("spin-base-path", "/"),
        ("spin-raw-component-route", "/foo/..."),
        ("spin-component-route", "/foo"),
        ("spin-client-addr", "127.0.0.1:8777"),
    ]
    .map(|(n, v)| (n.to_owned(), v.to_owned()));
    assert_eq!(headers(&m, &url), expected);
}

#[test]
fn default_headers_with_named_wildcards() {
    // Spin's test_default_headers_with_named_wildcards: one header per parameter, and the
    // component route keeps the parameter.
    let r = router("/", &[("/foo/:userid/...", "DUMMY")]);
    let m = r.route("/foo/42/bar").unwrap();
    let h = headers(&m, "https://fermyon.dev/foo/42/bar?key1=value1&key2=value2");
    assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
    assert_eq!(header(&h, "spin-matched-route"), Some("/foo/:userid/..."));
    assert_eq!(header(&h, "spin-component-route"), Some("/foo/:userid"));
    assert_eq!(header(&h, "spin-path-match-userid"), Some("42"));
    assert_eq!(h.len(), 8);
}

#[test]
fn parameter_header_names() {
    // Spin names them SPIN_PATH_MATCH_<NAME upper-cased>, then lower-cases the header and
    // turns `_` into `-` (prepare_header_key).
    let r = router("/", &[("/:user_ID/:Post-id", "c")]);
    let m = r.route("/ann/7").unwrap();
    let h = headers(&m, "http://localhost/ann/7");
    assert_eq!(header(&h, "spin-path-match-user-id"), Some("ann"));
    assert_eq!(header(&h, "spin-path-match-post-id"), Some("7"));
    // In route order, after Spin's seven.
    let names: Vec<&str> = h[7..].iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["spin-path-match-user-id", "spin-path-match-post-id"]
    );
}

#[test]
fn exact_route_headers() {
    // An exact route has no wildcard: Spin's path info is "" (trailing_wildcard's
    // unwrap_or_default), and the component route is the route.
    let r = router("/", &[("/users/:id", "u")]);
    let m = r.route("/users/9/").unwrap();
    let h = headers(&m, "http://localhost/users/9/");
    assert_eq!(header(&h, "spin-path-info"), Some(""));
    assert_eq!(header(&h, "spin-matched-route"), Some("/users/:id"));
    assert_eq!(header(&h, "spin-component-route"), Some("/users/:id"));
    assert_eq!(header(&h, "spin-raw-component-route"), Some("/users/:id"));
    assert_eq!(header(&h, "spin-path-match-id"), Some("9"));
}

#[test]
fn client_addr_header() {
    // Spin writes the SocketAddr with Display: IPv6 in brackets.
    let r = router("/", &[("/", "c")]);
    let m = r.route("/").unwrap();
    let v6: SocketAddr = "[::1]:3000".parse().unwrap();
    let h = spin_headers(&m, "http://localhost/", v6);
    assert_eq!(header(&h, "spin-client-addr"), Some("[::1]:3000"));
}

#[test]
fn valid_routes() {
    for route in [
        "/",
        "",
        "/...",
        "/foo",
        "foo",
        "/foo/",
        "/foo/...",
        "/foo/*",
        "/users/:id",
        "/users/:user_id/posts/:post-id/...",
        "/favicon.ico",
        "/.well-known/thing",
        "/a:b",
        "/foo...",
    ] {
        assert_eq!(validate_route(route), Ok(()), "{route}");
    }
}

#[test]
fn invalid_routes() {
    for (route, reason) in [
        (
            "/a/.../b",
            "`...` may only end a route (as `/...`), not stand in the middle",
        ),
        (
            ".../x",
            "`...` may only end a route (as `/...`), not stand in the middle",
        ),
        (
            "/a/*/b",
            "`*` may only end a route (as `/*`), not stand in the middle",
        ),
        (
            "/*rest",
            "a wildcard has no name: end the route with `/...` instead of `*rest`",
        ),
        ("/:", "a parameter needs a name after `:`"),
        ("/a/:/b", "a parameter needs a name after `:`"),
        (
            "/:name.json",
            "parameters followed by a dot (`:name.json`) are not supported",
        ),
        ("/a/./b", "`.` segments are not allowed"),
        ("/a/../b", "`..` segments are not allowed"),
        ("/:a/:a", "the parameter `:a` appears twice"),
        (
            "/:bad!",
            "the parameter name `bad!` may only have ASCII letters, digits, `_` and `-`",
        ),
    ] {
        assert_eq!(
            validate_route(route),
            Err(RouteError::InvalidRoute {
                route: route.to_owned(),
                component: None,
                reason: reason.to_owned(),
            }),
            "{route}"
        );
    }
    assert_eq!(
        validate_route("/a/.../b").unwrap_err().to_string(),
        "\"/a/.../b\" is not a valid route: `...` may only end a route (as `/...`), not stand in the middle"
    );
}

#[test]
fn router_names_the_component_of_an_invalid_route() {
    let err = Router::new("/", [("/ok", "fine"), ("/x/.../y", "broken")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"/x/.../y\" (the route of component \"broken\") is not a valid route: \
         `...` may only end a route (as `/...`), not stand in the middle"
    );
}

#[test]
fn bases() {
    for base in ["/", "", "/base", "base", "/base/", "/a/b"] {
        assert_eq!(validate_base(base), Ok(()), "{base}");
    }
    for base in ["/...", "/a/*", "/:tenant", "/a/.../b"] {
        assert!(validate_base(base).is_err(), "{base}");
    }
    assert_eq!(
        Router::new("/:tenant", [("/", "c")])
            .unwrap_err()
            .to_string(),
        "\"/:tenant\" is not a valid base path: a base is a literal path, without parameters or wildcards"
    );
}

#[test]
fn reserved_routes() {
    // Spin's reserved_routes_are_reserved / unreserved_routes_are_unreserved.
    assert!(router("/", &[("/.well-known/spin/...", "c")]).has_reserved_route());
    assert!(router("/", &[("/.well-known/spin/fie", "c")]).has_reserved_route());
    assert!(!router("/", &[("/.well-known/spindle/...", "c")]).has_reserved_route());
    assert!(!router("/", &[("/.well-known/spin", "c")]).has_reserved_route());
}
