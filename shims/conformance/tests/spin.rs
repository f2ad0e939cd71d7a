//! Spin applications on `containerd-shim-spin-v2` (runtime `io.containerd.spin.v2`), run as
//! SpinKube runs them: the command `/`, the listen address in `SPIN_HTTP_LISTEN_ADDR`, here
//! 127.0.0.1 in containerd's network namespace (`ctr run --net-host`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::component_server::Server;
use shim_conformance::container::Status;
use shim_conformance::expect::failed_at_create;
use shim_conformance::http::{Connection, Message, Upstream, get};
use shim_conformance::images::{
    SPIN_HELLO, SPIN_KV, SPIN_KV_P3, SPIN_OUTBOUND, SPIN_ROUTES, SPIN_STATIC, SPIN_VARS, TestImage,
    bad_spin,
};
use shim_conformance::leftovers::expect_no_leftovers;
use shim_conformance::spin_app::{COMMAND, app, container};

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
    let cases: [Case; 7] = [
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
            "spin-bad-outbound-host",
            &bad_spin::BAD_OUTBOUND_HOST,
            &[
                "/spin.toml",
                "component.hello.allowed_outbound_hosts",
                "example.com",
            ],
            &["no scheme"],
        ),
        (
            "spin-bad-variable",
            &bad_spin::UNKNOWN_VARIABLE,
            &["/spin.toml", "component.hello.variables.message", "nowhere"],
            &["is no variable"],
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

/// Variables: the application's defaults, `SPIN_VARIABLE_<NAME>` from the container's
/// environment (as SpinKube passes a SpinApp's `variables`), and the component's template made
/// of them; a required variable without a value stops the app at start, naming how to set it.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn variables_come_from_defaults_and_spin_variable_env() -> Result<()> {
    let port = 18283;
    let server = Server::launch(
        container("spin-vars", &SPIN_VARS, port).env("SPIN_VARIABLE_NAME=Kubernetes"),
        COMMAND,
        port,
    )?;
    let response = get(port, "/", &[])?;
    response.expect_status(200)?;
    ensure!(
        response.body == "message=Hello, Kubernetes\n",
        "GET /: {response:?}"
    );
    let config = get(port, "/config", &[])?;
    config.expect_status(200)?;
    ensure!(
        config.body == "config message=Hello, Kubernetes\n",
        "GET /config (wasi:config/store): {config:?}"
    );
    server.stop()?;

    let server = Server::launch(
        container("spin-vars-greeting", &SPIN_VARS, port)
            .env("SPIN_VARIABLE_NAME=Wasm")
            .env("SPIN_VARIABLE_GREETING=Hi"),
        COMMAND,
        port,
    )?;
    let response = get(port, "/", &[])?;
    ensure!(response.body == "message=Hi, Wasm\n", "GET /: {response:?}");
    server.stop()?;

    let missing = container("spin-vars-missing", &SPIN_VARS, port);
    let out = missing.run(&[COMMAND])?;
    ensure!(
        out.code == Some(1) && out.stderr.contains("name (set SPIN_VARIABLE_NAME)"),
        "a required variable without value did not stop the app, naming it: {}",
        out.describe()
    );
    expect_no_leftovers(missing.id())?;
    Ok(())
}

/// The key-value store `default` on SQLite: in memory by default (kept across requests, each in
/// a fresh instance); in a file on a volume when `/runtime-config.toml` (mounted, as SpinKube
/// mounts a SpinApp's runtimeConfig) puts it there, so a new container finds the count.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn key_value_data_lives_in_memory_or_on_a_volume_across_containers() -> Result<()> {
    let port = 18284;
    let count = |expected: u32| -> Result<()> {
        let response = get(port, "/", &[])?;
        response.expect_status(200)?;
        ensure!(
            response.body == format!("count={expected}\n"),
            "expected count={expected}: {response:?}"
        );
        Ok(())
    };
    let server = app("spin-kv-memory", &SPIN_KV, port)?;
    for n in 1..=3 {
        count(n)?;
    }
    server.stop()?;

    let volume = tempfile::Builder::new()
        .prefix("spin-kv-volume")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let config = volume.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.default]\ntype = \"spin\"\npath = \"/data/kv.db\"\n",
    )?;
    let with_volume = |label: &str| {
        container(label, &SPIN_KV, port)
            .flag(
                "--mount",
                &format!(
                    "type=bind,src={},dst=/data,options=rbind:rw",
                    volume.path().display()
                ),
            )
            .flag(
                "--mount",
                &format!(
                    "type=bind,src={},dst=/runtime-config.toml,options=rbind:ro",
                    config.display()
                ),
            )
    };
    let first = Server::launch(with_volume("spin-kv-volume-1"), COMMAND, port)?;
    count(1)?;
    count(2)?;
    first.stop()?;
    ensure!(
        volume.path().join("kv.db").exists(),
        "no kv.db on the volume"
    );
    let second = Server::launch(with_volume("spin-kv-volume-2"), COMMAND, port)?;
    count(3)?;
    second.stop()?;
    Ok(())
}

/// SpinKube's selective deployment: with `SPIN_COMPONENTS_TO_RETAIN` (as spin-operator sets it
/// from a SpinApp's `components`) only those components serve; the other routes answer 404. A
/// component the app does not have stops it at start, naming it.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn only_the_components_to_retain_serve() -> Result<()> {
    let port = 18288;
    let server = Server::launch(
        container("spin-retain", &SPIN_ROUTES, port).env("SPIN_COMPONENTS_TO_RETAIN=users,root"),
        COMMAND,
        port,
    )?;
    get(port, "/users/7", &[])?.expect_status(200)?;
    get(port, "/", &[])?.expect_status(200)?;
    get(port, "/static/a.css", &[])?
        .expect_status(404)
        .context("a component not retained still served")?;
    server.stop()?;

    let unknown =
        container("spin-retain-unknown", &SPIN_ROUTES, port).env("SPIN_COMPONENTS_TO_RETAIN=nope");
    let out = unknown.run(&[COMMAND])?;
    ensure!(
        out.code == Some(1) && out.stderr.contains("\"nope\" is no component"),
        "an unknown component to retain did not stop the app, naming it: {}",
        out.describe()
    );
    expect_no_leftovers(unknown.id())?;
    Ok(())
}

/// spin-sdk 7's shape on WASI 0.3: the async `spin:key-value@3.0.0` (the keys through its
/// stream) and `spin:variables@3.0.0` serve the same stores and variables.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn spin_sdk_7_reaches_the_async_key_value_and_variables() -> Result<()> {
    let port = 18287;
    let server = app("spin-kv-p3", &SPIN_KV_P3, port)?;
    for n in 1..=2 {
        let response = get(port, "/", &[])?;
        response.expect_status(200)?;
        ensure!(
            response.body == format!("count={n}\n"),
            "GET /: {response:?}"
        );
    }
    let keys = get(port, "/keys", &[])?;
    keys.expect_status(200)?;
    ensure!(keys.body == "keys=count\n", "GET /keys: {keys:?}");
    let vars = get(port, "/vars", &[])?;
    vars.expect_status(200)?;
    ensure!(
        vars.body == "message=Hello from WASI 0.3\n",
        "GET /vars: {vars:?}"
    );
    server.stop()?;
    Ok(())
}

/// `allowed_outbound_hosts`: outgoing HTTP and TCP reach the allowed host and port; another
/// port is refused (the upstream there sees nothing) with a line naming it on the container's
/// stderr. The component reads its `files` (a directory, a glob's files and a single file) and
/// nothing else of the image.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn outbound_hosts_and_files_are_what_the_manifest_allows() -> Result<()> {
    let port = 18285;
    let allowed = Upstream::start_on(18291)?;
    let forbidden = Upstream::start_on(18292)?;
    let server = app("spin-outbound", &SPIN_OUTBOUND, port)?;

    let fetched = get(port, "/fetch?to=http://127.0.0.1:18291/hello", &[])?;
    fetched.expect_status(200)?;
    ensure!(
        fetched
            .body
            .starts_with("status=200\nupstream saw GET /hello"),
        "GET /fetch (allowed): {fetched:?}"
    );
    let refused = get(port, "/fetch?to=http://127.0.0.1:18292/hello", &[])?;
    refused.expect_status(502)?;
    let connected = get(port, "/connect?to=127.0.0.1:18291", &[])?;
    connected.expect_status(200)?;
    ensure!(
        connected.body.starts_with("connected: HTTP/1.1 200"),
        "GET /connect (allowed): {connected:?}"
    );
    let not_connected = get(port, "/connect?to=127.0.0.1:18292", &[])?;
    not_connected.expect_status(502)?;
    ensure!(
        forbidden.seen() == 0,
        "the forbidden upstream got {} requests",
        forbidden.seen()
    );
    ensure!(
        allowed.seen() == 2,
        "the allowed upstream saw {}",
        allowed.seen()
    );

    for (path, content) in [
        ("/assets/hello.txt", "an asset of spin-outbound\n"),
        ("/index.html", "<h1>spin-outbound</h1>\n"),
        ("/notes/a.txt", "note a\n"),
    ] {
        let file = get(port, &format!("/file?path={path}"), &[])?;
        file.expect_status(200)?;
        ensure!(file.body == content, "{path}: {file:?}");
    }
    for outside in [
        "/spin.toml",
        "/outbound.wasm",
        "/assets/../spin.toml",
        "/notes/deep/b.txt",
    ] {
        get(port, &format!("/file?path={outside}"), &[])?
            .expect_status(404)
            .with_context(|| format!("the component read {outside}"))?;
    }

    let out = server.stop()?;
    for what in [
        "a request to http://127.0.0.1:18292 refused",
        "TcpConnect 127.0.0.1:18292 refused",
    ] {
        ensure!(
            out.stderr.contains(what),
            "no line {what:?} on the container's stderr: {}",
            out.describe()
        );
    }
    Ok(())
}

/// A trapping request gets 500 (why on the container's stderr) and the next one is served;
/// SIGTERM lets a slow request finish, then the task exits 0.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_trap_answers_500_and_sigterm_drains_in_flight_requests() -> Result<()> {
    let port = 18286;
    let server = app("spin-drain", &SPIN_OUTBOUND, port)?;
    get(port, "/trap", &[])?.expect_status(500)?;
    get(port, "/slow?ms=0", &[])?.expect_status(200)?;

    let mut connection = Connection::open(port)?;
    let started = Instant::now();
    let slow = std::thread::spawn(move || connection.request("GET", "/slow?ms=3000", &[]));
    // Let the request reach the guest before the signal.
    std::thread::sleep(Duration::from_millis(1000));
    server.container.kill("SIGTERM")?;
    std::thread::sleep(Duration::from_millis(300));
    match server.container.task()? {
        Some(task) if task.status == Status::Running => {}
        other => bail!("the app stopped before its in-flight request finished: task {other:?}"),
    }
    let response = slow
        .join()
        .map_err(|_| anyhow::anyhow!("request thread panicked"))??;
    response.expect_status(200)?;
    ensure!(response.body == "slept 3000 ms\n", "{response:?}");
    ensure!(
        started.elapsed() >= Duration::from_millis(2900),
        "the slow request came back after {:?}, before its 3 s sleep",
        started.elapsed()
    );
    let out = server.running.wait(Duration::from_secs(20))?;
    out.expect_code(0).context("after SIGTERM and the drain")?;
    ensure!(
        out.stderr.contains("answering 500") && out.stderr.contains("trap requested"),
        "the trap is not on the container's stderr: {}",
        out.describe()
    );
    Ok(())
}
