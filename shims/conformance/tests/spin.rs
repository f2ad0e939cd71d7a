//! Spin applications on `containerd-shim-spin-v2` (runtime `io.containerd.spin.v2`), run as
//! SpinKube runs them: the command `/`, the listen address in `SPIN_HTTP_LISTEN_ADDR`, here
//! 127.0.0.1 in containerd's network namespace (`ctr run --net-host`).

use anyhow::{Context, Result, ensure};
use shim_conformance::component_server::Server;
use shim_conformance::container::Container;
use shim_conformance::engines::{Runtime, SPIN};
use shim_conformance::expect::failed_at_create;
use shim_conformance::http::{Message, get};
use shim_conformance::images::{SPIN_HELLO, SPIN_ROUTES, SPIN_STATIC, TestImage, bad_spin};
use shim_conformance::leftovers::expect_no_leftovers;

/// SpinKube's command for a Spin app's container.
const COMMAND: &str = "/";

fn spin() -> &'static Runtime {
    if let Err(e) = SPIN.locate() {
        panic!("the spin shim is needed for these tests: {e:#}");
    }
    &SPIN
}

fn container(label: &str, image: &'static TestImage, port: u16) -> Container {
    Container::new(label, spin(), image)
        .net_host()
        .env(&format!("SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}"))
}

fn app(label: &str, image: &'static TestImage, port: u16) -> Result<Server> {
    Server::launch(container(label, image, port), COMMAND, port)
}

/// `response` is a 200 whose body has every one of `lines`, and a `spin-client-addr` from
/// 127.0.0.1.
fn expect_lines(response: &Message, lines: &[String]) -> Result<()> {
    response.expect_status(200)?;
    let got: Vec<&str> = response.body.lines().collect();
    for line in lines {
        ensure!(
            got.contains(&line.as_str()),
            "no line {line:?} in the answer:\n{}",
            response.body
        );
    }
    ensure!(
        got.iter()
            .any(|line| line.starts_with("spin-client-addr=127.0.0.1:")),
        "no spin-client-addr from 127.0.0.1 in the answer:\n{}",
        response.body
    );
    Ok(())
}

/// The seed's handler (spin-sdk 3, a wasm32-wasip1 module the shim makes a component) answers
/// on every path of its `/...` route; SIGTERM ends the task with 0.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_seeds_hello_handler_answers_through_io_containerd_spin_v2() -> Result<()> {
    let port = 18280;
    let server = app("spin-hello", &SPIN_HELLO, port)?;
    for path in ["/", "/hello", "/a/b?c=d"] {
        let response = get(port, path, &[])?;
        response.expect_status(200)?;
        ensure!(
            response.body == "Hello from Wasm on Kubernetes!",
            "{path}: {response:?}"
        );
        ensure!(
            response.header("content-type") == Some("text/plain"),
            "{path}: {response:?}"
        );
    }
    let out = server.stop()?;
    ensure!(
        out.stdout.contains("Handling request to Some("),
        "the component's print did not reach the container's stdout: {}",
        out.describe()
    );
    Ok(())
}

/// Requests go to the most specific route's component, with Spin's `spin-*` headers: a route
/// parameter, a trailing wildcard and the exact root route, each its own component; a path no
/// route matches gets 404.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn routes_reach_their_component_with_spins_headers() -> Result<()> {
    let port = 18281;
    let server = app("spin-routes", &SPIN_ROUTES, port)?;
    let url = |path: &str| format!("spin-full-url=http://127.0.0.1:{port}{path}");
    let lines = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();

    let users = get(port, "/users/42", &[])?;
    let mut expected = lines(&[
        "users: id=42",
        "spin-path-match-id=42",
        "spin-matched-route=/users/:id",
        "spin-component-route=/users/:id",
        "spin-raw-component-route=/users/:id",
        "spin-path-info=",
        "spin-base-path=/",
    ]);
    expected.push(url("/users/42"));
    expect_lines(&users, &expected).context("GET /users/42")?;

    let path = "/static/css/site.css?v=2";
    let assets = get(port, path, &[])?;
    let mut expected = lines(&[
        "static: path-info=/css/site.css",
        "spin-matched-route=/static/...",
        "spin-component-route=/static",
        "spin-raw-component-route=/static/...",
        "spin-path-info=/css/site.css",
        "spin-base-path=/",
    ]);
    expected.push(url(path));
    expect_lines(&assets, &expected).context("GET /static/css/site.css?v=2")?;

    let root = get(port, "/", &[])?;
    root.expect_status(200)?;
    ensure!(root.body == "root\n", "GET /: {root:?}");

    // `/users/:id` takes exactly one segment; nothing else is routed.
    for unrouted in ["/users/42/orders", "/nothing"] {
        get(port, unrouted, &[])?
            .expect_status(404)
            .with_context(|| format!("GET {unrouted}"))?;
    }
    server.stop()?;
    Ok(())
}

/// `static_response` triggers answer without a component: their status, headers and body.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn static_responses_answer_without_a_component() -> Result<()> {
    let port = 18282;
    let server = app("spin-static", &SPIN_STATIC, port)?;
    let gone = get(port, "/gone", &[])?;
    gone.expect_status(410)?;
    ensure!(
        gone.header("x-why") == Some("moved") && gone.body == "gone\n",
        "GET /gone: {gone:?}"
    );
    let teapot = get(port, "/teapot/earl-grey", &[])?;
    teapot.expect_status(418)?;
    ensure!(teapot.body.is_empty(), "GET /teapot/earl-grey: {teapot:?}");
    get(port, "/elsewhere", &[])?.expect_status(404)?;
    server.stop()?;
    Ok(())
}

/// A manifest the shim cannot serve fails `create` with an error naming `/spin.toml`, the
/// field and what is wrong, and leaves nothing behind.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn bad_manifests_fail_at_create_naming_the_file_and_field() -> Result<()> {
    // (label, image, what the error names, why: one of these, in lower case)
    type Case = (
        &'static str,
        &'static TestImage,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: [Case; 5] = [
        (
            "spin-bad-component",
            &bad_spin::UNKNOWN_COMPONENT,
            &["/spin.toml", "trigger.http[0].component", "nowhere"],
            &["unknown component"],
        ),
        (
            "spin-bad-file",
            &bad_spin::MISSING_FILE,
            &["/spin.toml", "component.hello.source", "/missing.wasm"],
            &["no such file"],
        ),
        (
            "spin-bad-route",
            &bad_spin::BAD_ROUTE,
            &["/spin.toml", "trigger.http[0].route", "/a/.../b"],
            &["not a valid route", "invalid"],
        ),
        (
            "spin-bad-trigger",
            &bad_spin::REDIS_TRIGGER,
            &["/spin.toml", "trigger.redis", "redis"],
            &["not supported"],
        ),
        (
            "spin-bad-not-http",
            &bad_spin::NOT_HTTP,
            &["/spin.toml", "component.hello.source", "/hello.wasm"],
            &["exports no http handler"],
        ),
    ];
    for (label, image, names, reasons) in cases {
        let bad = container(label, image, 18289);
        let out = bad.run(&[COMMAND])?;
        failed_at_create(&out, names, reasons).with_context(|| label.to_string())?;
        expect_no_leftovers(bad.id())?;
    }
    Ok(())
}
