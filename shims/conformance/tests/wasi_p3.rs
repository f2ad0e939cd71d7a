//! WASI 0.3 components on the wasmtime shim: a `wasi:cli/run@0.3` command
//! (test-images/cli-p3) and a `wasi:http/service@0.3` server (test-images/http-hello-p3), both
//! built with the `wasip3` crate against WASI 0.3.2, newer than the 0.3.0 wasmtime 48 offers;
//! and the refusal of both by WAMR, which runs core modules only.
//!
//! The server answers as its WASI 0.2 twin http-hello does (tests/http.rs), plus `wasi=0.3`;
//! its `x-counter` header counts the requests its instance has seen, which tells a fresh
//! instance (1) from a reused one.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::component_server::{ADDR_ENV, NETWORK_ANNOTATION, Server, wasmtime};
use shim_conformance::container::{Container, Status};
use shim_conformance::http::{
    Connection, Message, Upstream, expect_every_answer, get, get_all_at_once,
};
use shim_conformance::images::{CLI_P3, HTTP_HELLO_P3};
use shim_conformance::target::{Target, check_targets, wasm_targets};

const PROGRAM: &str = "/http-hello-p3.wasm";
const MAX_REUSE_ANNOTATION: &str = "io.containerd.wasm.http.max-instance-reuse";
const MAX_CONCURRENT_REUSE_ANNOTATION: &str =
    "io.containerd.wasm.http.max-instance-concurrent-reuse";

fn server(label: &str, port: u16, env: &[&str]) -> Result<Server> {
    Server::start(label, &HTTP_HELLO_P3, PROGRAM, port, env, false)
}

/// The body http-hello-p3 answers a request without headers with, its instance having seen
/// `counter` requests.
fn hello_body(method: &str, path: &str, greeting: &str, counter: u32) -> String {
    format!(
        "method={method}\npath={path}\nx-test=\nGREETING={greeting}\ncounter={counter}\nwasi=0.3\n"
    )
}

fn counter(response: &Message) -> Result<u32> {
    response
        .header("x-counter")
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("no x-counter header: {response:?}"))
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_wasi_0_3_command_prints_its_args_and_its_status() -> Result<()> {
    let program = "/cli-p3.wasm";
    let command = |label: &str| Container::new(label, wasmtime(), &CLI_P3);
    command("cli-p3-args")
        .run(&[program, "a", "b c"])?
        .expect(0, "hello from rust (wasi 0.3) a b c\n")?;
    command("cli-p3-fail")
        .run(&[program, "fail"])?
        .expect(1, "hello from rust (wasi 0.3) fail\n")?;
    command("cli-p3-env")
        .env("GREETING=from the spec")
        .run(&[program, "env", "GREETING"])?
        .expect(
            0,
            "hello from rust (wasi 0.3) env GREETING\nGREETING=from the spec\n",
        )?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_wasi_0_3_server_answers_each_request_with_a_fresh_instance() -> Result<()> {
    let port = 18181;
    let server = server("http-p3-fresh", port, &["GREETING=hello from env"])?;
    let mut connection = Connection::open(port)?;
    for i in 0..10 {
        let path = format!("/fresh/{i}");
        let response = connection.request("GET", &path, &[])?;
        response.expect_status(200)?;
        ensure!(
            response.body == hello_body("GET", &path, "hello from env", 1),
            "request {i}: expected a fresh instance's answer; got {response:?}"
        );
        ensure!(
            response.header("x-hello") == Some("http-hello-p3"),
            "request {i}: {response:?}"
        );
    }
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_hundred_concurrent_requests_are_all_answered() -> Result<()> {
    let port = 18182;
    let server = server("http-p3-concurrent", port, &[])?;
    let paths: Vec<String> = (0..100).map(|i| format!("/c/{i}")).collect();
    let answers = get_all_at_once(port, &paths)?;
    expect_every_answer(&paths, answers, |path, response| {
        response.expect_status(200)?;
        ensure!(
            response.body == hello_body("GET", path, "", 1),
            "{response:?}"
        );
        Ok(())
    })?;
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_trapping_request_gets_500_and_the_next_one_succeeds() -> Result<()> {
    let port = 18183;
    let server = server("http-p3-trap", port, &[])?;
    get(port, "/trap", &[])?.expect_status(500)?;
    let after = get(port, "/after-trap", &[])?;
    after.expect_status(200)?;
    ensure!(
        after.body == hello_body("GET", "/after-trap", "", 1),
        "{after:?}"
    );
    let out = server.stop()?;
    ensure!(
        out.stderr.contains("answering 500") && out.stderr.contains("trap requested"),
        "the trap is not on the container's stderr: {}",
        out.describe()
    );
    Ok(())
}

/// With reuse on, one instance serves several requests (its counter climbs), never more than
/// the setting allows; a trap costs only the instance it happened in.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn instance_reuse_serves_several_requests_per_instance_up_to_the_limit() -> Result<()> {
    let port = 18184;
    let max_reuse = 5;
    let container = Container::new("http-p3-reuse", wasmtime(), &HTTP_HELLO_P3)
        .net_host()
        .env(&format!("{ADDR_ENV}=127.0.0.1:{port}"))
        .annotation(MAX_REUSE_ANNOTATION, &max_reuse.to_string())
        .annotation(MAX_CONCURRENT_REUSE_ANNOTATION, "4");
    let server = Server::launch(container, PROGRAM, port)?;
    let mut connection = Connection::open(port)?;
    let mut counters = Vec::new();
    for i in 0..30 {
        let response = connection.request("GET", &format!("/reuse/{i}"), &[])?;
        response.expect_status(200)?;
        counters.push(counter(&response)?);
    }
    let highest = counters.iter().copied().max().unwrap_or(0);
    ensure!(
        highest > 1,
        "no instance served a second request: counters {counters:?}"
    );
    ensure!(
        highest <= max_reuse,
        "an instance served more than {max_reuse} requests: counters {counters:?}"
    );
    get(port, "/trap", &[])?.expect_status(500)?;
    get(port, "/after-trap", &[])?.expect_status(200)?;
    // Requests at once: all answered, by instances that may take several each.
    let paths: Vec<String> = (0..8).map(|i| format!("/sleep?ms=200&i={i}")).collect();
    let answers = get_all_at_once(port, &paths)?;
    let mut seen = BTreeSet::new();
    for answer in answers {
        let answer = answer?;
        answer.expect_status(200)?;
        seen.insert(counter(&answer)?);
    }
    ensure!(
        seen.iter().all(|&n| n <= max_reuse),
        "concurrent counters beyond {max_reuse}: {seen:?}"
    );
    server.stop()?;
    Ok(())
}

/// `wasi:http/client@0.3` goes out under the same rule as 0.2's outgoing handler: refused
/// (the guest sees `HTTP-request-denied`, the upstream nothing) unless the container has
/// `io.containerd.wasm.network=allow`.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn outgoing_http_goes_out_only_with_the_network_annotation() -> Result<()> {
    let upstream = Upstream::start()?;
    let fetch = format!("/fetch?to=127.0.0.1:{}/from-p3?x=1", upstream.port);

    let port = 18187;
    let denied = Server::start(
        "http-p3-no-network",
        &HTTP_HELLO_P3,
        PROGRAM,
        port,
        &[],
        false,
    )?;
    let response = get(port, &fetch, &[])?;
    response.expect_status(502)?;
    ensure!(
        response.body.contains("HttpRequestDenied"),
        "the refusal is not the one the guest should see: {response:?}"
    );
    ensure!(
        upstream.seen() == 0,
        "the upstream was reached without {NETWORK_ANNOTATION}=allow: {response:?}"
    );
    denied.stop()?;

    let port = 18188;
    let allowed = Server::start("http-p3-network", &HTTP_HELLO_P3, PROGRAM, port, &[], true)?;
    let response = get(port, &fetch, &[])?;
    response.expect_status(200)?;
    ensure!(
        response
            .body
            .starts_with("upstream=200\nupstream saw GET /from-p3?x=1 HTTP/1.1\n"),
        "the upstream's answer did not come through: {response:?}"
    );
    ensure!(
        upstream.seen() == 1,
        "the upstream saw {} requests",
        upstream.seen()
    );
    allowed.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigterm_lets_a_slow_request_finish_then_exits_0() -> Result<()> {
    let port = 18185;
    let server = server("http-p3-drain", port, &[])?;
    let mut connection = Connection::open(port)?;
    let started = Instant::now();
    let slow = std::thread::spawn(move || connection.request("GET", "/sleep?ms=3000", &[]));
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
    response.expect_status(200)?;
    ensure!(
        response.body == hello_body("GET", "/sleep", "", 1),
        "{response:?}"
    );
    ensure!(
        started.elapsed() >= Duration::from_millis(2900),
        "the slow request came back after {:?}, before its 3 s sleep",
        started.elapsed()
    );
    server
        .running
        .wait(Duration::from_secs(20))?
        .expect_code(0)
        .context("after SIGTERM and the drain")?;
    Ok(())
}

/// WAMR and WasmEdge run core modules: a component fails `create`, saying what it is and
/// which shim runs it, rather than "invalid".
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn core_module_engines_refuse_wasi_0_3_components_saying_why() {
    let core_module_engines: Vec<Target> = wasm_targets()
        .into_iter()
        .filter(|target| target.runtime.name != wasmtime().name)
        .collect();
    check_targets(&core_module_engines, |target, test| {
        for (image, program) in [(&CLI_P3, "/cli-p3.wasm"), (&HTTP_HELLO_P3, PROGRAM)] {
            let out = Container::new(test, target.runtime, image).run(&[program])?;
            ensure!(
                out.code != Some(0)
                    && out.stderr.contains("a WebAssembly component")
                    && out.stderr.contains("io.containerd.wasmtime.v1"),
                "`{}`: expected create to fail naming the component and the wasmtime shim; got {}",
                out.command,
                out.describe()
            );
        }
        Ok(())
    });
}
