//! WASI 0.2 components on the wasmtime shim: `wasi:http/proxy` components served over HTTP
//! with a fresh instance per request (test-images/http-hello, test-images/auth-gateway), and a
//! `wasi:cli/run` component run like a module (the demo built for wasm32-wasip2).
//!
//! Servers run with `ctr run --net-host`, i.e. in the private containerd's network namespace,
//! each test on its own port; requests come from threads that joined that namespace.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shim_conformance::component_server::{ADDR_ENV, NETWORK_ANNOTATION, Server, wasmtime};
use shim_conformance::container::{Container, Status};
use shim_conformance::expect::EXIT_SIGKILL;
use shim_conformance::http::{
    Connection, Message, Upstream, expect_every_answer, get, get_all_at_once,
};
use shim_conformance::images::{AUTH_GATEWAY, HTTP_HELLO, TCP_ECHO, WASI_DEMO_APP_COMPONENT};

/// The http-hello server, as it comes (no extra environment, no outgoing network).
fn hello_server(label: &str, port: u16) -> Result<Server> {
    Server::start(label, &HTTP_HELLO, "/http-hello.wasm", port, &[], false)
}

fn expect_body(response: &Message, body: &str) -> Result<()> {
    if response.body != body {
        bail!("expected body {body:?}, got {response:?}");
    }
    Ok(())
}

fn hello_body(method: &str, path: &str, x_test: &str, greeting: &str) -> String {
    format!("method={method}\npath={path}\nx-test={x_test}\nGREETING={greeting}\ncounter=1\n")
}

/// http-hello's answer, as it comes, to a request without headers: 200, and a body that
/// shows the method and the path.
fn expect_hello(response: &Message, method: &str, path: &str) -> Result<()> {
    response.expect_status(200)?;
    expect_body(response, &hello_body(method, path, "", ""))
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn responses_carry_the_request_headers_and_env_on_a_kept_alive_connection() -> Result<()> {
    let port = 18081;
    let server = Server::start(
        "http-hello-responses",
        &HTTP_HELLO,
        "/http-hello.wasm",
        port,
        &["GREETING=hello from env", "WASMTIME_HTTP_PROXY_BACKLOG=16"],
        false,
    )?;
    let mut connection = Connection::open(port)?;
    let first = connection.request("GET", "/some/path?q=1", &[("x-test", "header value")])?;
    first.expect_status(200)?;
    expect_body(
        &first,
        &hello_body("GET", "/some/path", "header value", "hello from env"),
    )?;
    for (name, value) in [("x-hello", "http-hello"), ("content-type", "text/plain")] {
        if first.header(name) != Some(value) {
            bail!("expected header {name}: {value}; got {first:?}");
        }
    }
    // HTTP/1.1 keep-alive: the next request goes over the same connection.
    let second = connection.request("DELETE", "/other", &[])?;
    second.expect_status(200)?;
    expect_body(
        &second,
        &hello_body("DELETE", "/other", "", "hello from env"),
    )?;
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn an_invalid_listen_address_fails_the_task() -> Result<()> {
    let out = Container::new("http-hello-bad-addr", wasmtime(), &HTTP_HELLO)
        .net_host()
        .env(&format!("{ADDR_ENV}=not-an-address"))
        .run(&["/http-hello.wasm"])?;
    if matches!(out.code, Some(0) | None) {
        bail!(
            "`{}`: expected the task to fail; got {}",
            out.command,
            out.describe()
        );
    }
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn two_hundred_concurrent_requests_are_all_answered_by_fresh_instances() -> Result<()> {
    let port = 18082;
    let server = hello_server("http-hello-concurrent", port)?;
    let paths: Vec<String> = (0..200).map(|i| format!("/request/{i}")).collect();
    let answers = get_all_at_once(port, &paths)?;
    expect_every_answer(&paths, answers, |path, response| {
        expect_hello(response, "GET", path)
    })?;
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn no_state_leaks_from_one_request_to_the_next() -> Result<()> {
    let port = 18083;
    let server = hello_server("http-hello-no-leak", port)?;
    let mut connection = Connection::open(port)?;
    for i in 0..20 {
        let response = connection.request("GET", "/count", &[])?;
        response.expect_status(200)?;
        if response.header("x-counter") != Some("1") {
            bail!(
                "request {i}: the instance's global counter is not 1, so state leaked: {response:?}"
            );
        }
    }
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_trapping_request_gets_500_and_the_next_one_succeeds() -> Result<()> {
    let port = 18084;
    let server = hello_server("http-hello-trap", port)?;
    let mut connection = Connection::open(port)?;
    connection
        .request("GET", "/trap", &[])?
        .expect_status(500)?;
    expect_hello(
        &connection.request("GET", "/after-trap", &[])?,
        "GET",
        "/after-trap",
    )?;
    get(port, "/new-connection", &[])?.expect_status(200)?;
    let out = server.stop()?;
    // The guest's panic message, then the shim's line with the trap and its Wasm backtrace
    // (file and line from the component's DWARF: the panic in its handler).
    if !out.stderr.contains("trap requested")
        || !out.stderr.contains("GET /trap: answering 500")
        || !out.stderr.contains("wasm backtrace")
        || !out.stderr.contains("http-hello/src/lib.rs:41")
    {
        bail!(
            "the trap and its backtrace are not on the container's stderr: {}",
            out.describe()
        );
    }
    Ok(())
}

/// containerd's default seccomp profile (Kubernetes' `RuntimeDefault`) confines the engine's
/// process: the server's sockets, its threads and the signal a trap raises all still work.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_server_works_under_the_default_seccomp_profile() -> Result<()> {
    let port = 18089;
    let container = Container::new("http-hello-seccomp", wasmtime(), &HTTP_HELLO)
        .net_host()
        .env(&format!("{ADDR_ENV}=127.0.0.1:{port}"))
        .switch("--seccomp");
    let server = Server::launch(container, "/http-hello.wasm", port)?;
    let paths: Vec<String> = (0..8).map(|i| format!("/concurrent/{i}")).collect();
    let answers = get_all_at_once(port, &paths)?;
    for (i, answer) in answers.into_iter().enumerate() {
        expect_hello(&answer?, "GET", &format!("/concurrent/{i}"))?;
    }
    get(port, "/trap", &[])?.expect_status(500)?;
    get(port, "/after-trap", &[])?.expect_status(200)?;
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigterm_lets_a_slow_request_finish_then_exits_0() -> Result<()> {
    let port = 18085;
    let server = hello_server("http-hello-drain", port)?;
    let mut connection = Connection::open(port)?;
    let started = Instant::now();
    let slow = std::thread::spawn(move || connection.request("GET", "/sleep?ms=3000", &[]));
    // Let the request reach the guest before the signal.
    std::thread::sleep(Duration::from_millis(1000));
    server.container.kill("SIGTERM")?;
    std::thread::sleep(Duration::from_millis(300));
    match server.container.task()? {
        Some(task) if task.status == Status::Running => {}
        other => bail!("the server stopped before its in-flight request finished: task {other:?}"),
    }
    let response = slow
        .join()
        .map_err(|_| anyhow::anyhow!("request thread panicked"))??;
    expect_hello(&response, "GET", "/sleep")?;
    if started.elapsed() < Duration::from_millis(2900) {
        bail!(
            "the slow request came back after {:?}, before its 3 s sleep",
            started.elapsed()
        );
    }
    server
        .running
        .wait(Duration::from_secs(20))?
        .expect_code(0)
        .context("after SIGTERM and the drain")?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigkill_stops_the_server_at_once() -> Result<()> {
    let port = 18086;
    let server = hello_server("http-hello-sigkill", port)?;
    let mut connection = Connection::open(port)?;
    let slow = std::thread::spawn(move || connection.request("GET", "/sleep?ms=20000", &[]));
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    server.container.kill("SIGKILL")?;
    server
        .container
        .wait_until_not_running(Duration::from_secs(5))?;
    server
        .running
        .wait(Duration::from_secs(20))?
        .expect_code(EXIT_SIGKILL)?;
    let answered = slow
        .join()
        .map_err(|_| anyhow::anyhow!("request thread panicked"))?;
    if answered.is_ok() || killed.elapsed() > Duration::from_secs(10) {
        bail!(
            "the in-flight request should have been cut off at once; got {answered:?} after {:?}",
            killed.elapsed()
        );
    }
    Ok(())
}

const SECRET: &str = "gateway test secret";

/// An HS256 JWT for `subject` that expires `expires_in` seconds from now (in the past when
/// negative), signed with `secret`.
fn token(subject: &str, expires_in: i64, secret: &str) -> String {
    let expires = now().saturating_add_signed(expires_in);
    let claims = format!(r#"{{"sub":"{subject}","exp":{expires}}}"#);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// GET `path` from the server on `port` with `token` as the bearer (none if empty).
fn get_with_token(port: u16, path: &str, token: &str) -> Result<Message> {
    if token.is_empty() {
        return get(port, path, &[]);
    }
    get(port, path, &[("authorization", &format!("Bearer {token}"))])
}

fn start_gateway(label: &str, port: u16, upstream: &Upstream, network: bool) -> Result<Server> {
    Server::start(
        label,
        &AUTH_GATEWAY,
        "/auth-gateway.wasm",
        port,
        &[
            &format!("UPSTREAM_URL=http://127.0.0.1:{}/api", upstream.port),
            &format!("JWT_SECRET={SECRET}"),
        ],
        network,
    )
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_auth_gateway_answers_401_403_or_the_upstreams_response() -> Result<()> {
    let upstream = Upstream::start()?;
    let port = 18087;
    let server = start_gateway("auth-gateway", port, &upstream, true)?;
    for (what, token, status) in [
        ("no token", String::new(), 401),
        (
            "a bad signature",
            token("alice", 3600, "not the secret"),
            403,
        ),
        ("an expired token", token("alice", -60, SECRET), 403),
    ] {
        get_with_token(port, "/orders/7", &token)?
            .expect_status(status)
            .with_context(|| format!("a request with {what} must be refused"))?;
    }
    if upstream.seen() != 0 {
        bail!("a refused request reached the upstream");
    }
    let response = get_with_token(port, "/orders/7?x=1", &token("alice", 3600, SECRET))?;
    response.expect_status(200)?;
    expect_body(
        &response,
        "upstream saw GET /api/orders/7?x=1 HTTP/1.1\nx-auth-subject=alice\nauthorization=absent\n",
    )?;
    if response.header("x-upstream") != Some("seen") {
        bail!("the upstream's headers did not come back: {response:?}");
    }
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn outgoing_http_is_denied_without_the_network_annotation() -> Result<()> {
    let upstream = Upstream::start()?;
    let port = 18088;
    let server = start_gateway("auth-gateway-no-network", port, &upstream, false)?;
    let response = get_with_token(port, "/orders", &token("bob", 3600, SECRET))?;
    response.expect_status(502)?;
    if upstream.seen() != 0 {
        bail!("the upstream was reached without {NETWORK_ANNOTATION}=allow: {response:?}");
    }
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_wasi_cli_run_component_runs_like_a_module() -> Result<()> {
    let component = |label: &str| Container::new(label, wasmtime(), &WASI_DEMO_APP_COMPONENT);
    let program = "/wasi-demo-app.wasm";
    // (label, sub-command, exit code, stdout)
    let runs: [(&str, &[&str], i32, &str); 5] = [
        ("component-echo", &["echo", "a", "b c"], 0, "a b c\n"),
        (
            "component-args",
            &["args", "x"],
            0,
            "/wasi-demo-app.wasm\nargs\nx\n",
        ),
        (
            "component-file",
            &["cat", "/data/hello.txt"],
            0,
            "hello from a file\n",
        ),
        // WASI 0.2's `wasi:cli/exit.exit` carries success or failure only (the component
        // imports no `exit-with-code`): any non-zero status arrives as 1, as under
        // `wasmtime run`.
        ("component-exit-0", &["exit", "0"], 0, ""),
        ("component-exit-42", &["exit", "42"], 1, ""),
    ];
    for (label, command, code, stdout) in runs {
        let args: Vec<&str> = std::iter::once(program)
            .chain(command.iter().copied())
            .collect();
        component(label).run(&args)?.expect(code, stdout)?;
    }
    let env = component("component-env")
        .env("COMPONENT_VAR=set")
        .run(&[program, "env"])?;
    if env.code != Some(0) || !env.stdout.lines().any(|line| line == "COMPONENT_VAR=set") {
        bail!(
            "`{}`: expected COMPONENT_VAR=set among the variables; got {}",
            env.command,
            env.describe()
        );
    }
    Ok(())
}

const ALLOWED_OUTBOUND_HOSTS: &str = "io.containerd.wasm.allowed-outbound-hosts";

/// A request still unanswered at the container's request deadline gets 504, and the server
/// goes on answering the next ones.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_request_past_its_deadline_gets_504() -> Result<()> {
    let port = 18095;
    let container = Container::new("http-hello-deadline", wasmtime(), &HTTP_HELLO)
        .net_host()
        .env(&format!("{ADDR_ENV}=127.0.0.1:{port}"))
        .annotation("io.containerd.wasm.http.request-deadline", "500ms");
    let server = Server::launch(container, "/http-hello.wasm", port)?;
    let began = Instant::now();
    get(port, "/sleep?ms=5000", &[])?.expect_status(504)?;
    if began.elapsed() > Duration::from_secs(3) {
        bail!("the 504 came after {:?}", began.elapsed());
    }
    expect_hello(&get(port, "/after", &[])?, "GET", "/after")?;
    let out = server.stop()?;
    if !out.stderr.contains("answering 504") {
        bail!(
            "the deadline is not on the container's stderr: {}",
            out.describe()
        );
    }
    Ok(())
}

/// The gateway of container `label` on `port`, whose only allowed outbound host is `allowed`.
fn confined_gateway(label: &str, port: u16, upstream: &Upstream, allowed: &str) -> Result<Server> {
    let container = Container::new(label, wasmtime(), &AUTH_GATEWAY)
        .net_host()
        .env(&format!("{ADDR_ENV}=127.0.0.1:{port}"))
        .env(&format!(
            "UPSTREAM_URL=http://127.0.0.1:{}/api",
            upstream.port
        ))
        .env(&format!("JWT_SECRET={SECRET}"))
        .annotation(ALLOWED_OUTBOUND_HOSTS, allowed);
    Server::launch(container, "/auth-gateway.wasm", port)
}

/// With allowed outbound hosts (and no network annotation), outgoing HTTP reaches those
/// hosts and no other; the refusal names the container and the host.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn outgoing_http_reaches_only_the_allowed_hosts() -> Result<()> {
    let upstream = Upstream::start()?;
    let allowed = format!("http://127.0.0.1:{}", upstream.port);
    let server = confined_gateway("auth-gateway-allowed", 18096, &upstream, &allowed)?;
    get_with_token(18096, "/orders/1", &token("carol", 3600, SECRET))?.expect_status(200)?;
    server.stop()?;

    let other = "http://127.0.0.1:1,https://*.example.com";
    let server = confined_gateway("auth-gateway-elsewhere", 18097, &upstream, other)?;
    let id = server.container.id().to_string();
    get_with_token(18097, "/orders/2", &token("carol", 3600, SECRET))?.expect_status(502)?;
    let out = server.stop()?;
    if upstream.seen() != 1 {
        bail!(
            "the upstream saw {} requests, not the allowed one only",
            upstream.seen()
        );
    }
    let refusal = format!(
        "container {id}: a request to http://127.0.0.1:{}",
        upstream.port
    );
    if !out.stderr.contains(&refusal) || !out.stderr.contains("refused") {
        bail!(
            "no refusal naming the container and the host: {}",
            out.describe()
        );
    }
    Ok(())
}

/// A `wasi:sockets` TCP connection (tcp-echo's client) goes to an allowed host and port,
/// and is refused anywhere else, with the refusal on the container's stderr.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_socket_reaches_only_the_allowed_hosts() -> Result<()> {
    let upstream = Upstream::start()?;
    let target = format!("127.0.0.1:{}", upstream.port);
    let connect = |label: &str, allowed: &str| {
        Container::new(label, wasmtime(), &TCP_ECHO)
            .net_host()
            .annotation(ALLOWED_OUTBOUND_HOSTS, allowed)
            .run(&[
                "/tcp-echo.wasm",
                "connect",
                &target,
                "GET /raw HTTP/1.0\r\n\r\n",
            ])
    };
    let out = connect("tcp-allowed", &format!("tcp://127.0.0.1:{}", upstream.port))?;
    out.expect_code(0)?;
    if !out.stdout.starts_with("HTTP/1.1 200 OK") || !out.stdout.contains("GET /raw HTTP/1.0") {
        bail!("the allowed connection got no answer: {}", out.describe());
    }
    let out = connect("tcp-elsewhere", "tcp://127.0.0.1:1,tcp://10.0.0.0/8:*")?;
    out.expect_code(1)?;
    if !out.stderr.contains(&format!("TcpConnect {target} refused")) {
        bail!("no refusal of the connection: {}", out.describe());
    }
    if upstream.seen() != 1 {
        bail!(
            "the upstream saw {} connections, not the allowed one only",
            upstream.seen()
        );
    }
    Ok(())
}
