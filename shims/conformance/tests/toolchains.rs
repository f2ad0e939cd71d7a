//! Components made by other toolchains than Rust's, as users bring them, on the wasmtime
//! shim (scripts/build-toolchain-images.sh builds them with pinned toolchains): Python by
//! componentize-py (a `wasi:cli` command, a WASI 0.2 and a WASI 0.3 HTTP server, each carrying
//! CPython, about 20 MB) and JavaScript by componentize-js (a WASI 0.2 HTTP server). They
//! import wasi:cli and the rest at other patch versions than the worlds they export (0.2.9,
//! 0.2.10, 0.2.12, 0.3.0), and componentize-py's export an extra `exports` interface.
//!
//! The first start compiles the component (seconds for CPython); the server tests wait for it.

use anyhow::{Result, ensure};
use shim_conformance::component_server::{START_TIMEOUT, Server, wasmtime};
use shim_conformance::container::Container;
use shim_conformance::http::{Connection, get};
use shim_conformance::images::{JS_HTTP, PYTHON_CLI, PYTHON_HTTP_P2, PYTHON_HTTP_P3, TestImage};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_python_command_prints_its_args_and_exits_with_its_code() -> Result<()> {
    let program = "/python-cli.wasm";
    let command = |label: &str| Container::new(label, wasmtime(), &PYTHON_CLI);
    // The first run compiles CPython.
    command("python-cli-args")
        .run_within(&[program, "a", "b"], START_TIMEOUT)?
        .expect(0, "hello from python a b\n")?;
    command("python-cli-exit")
        .run(&[program, "exit", "42"])?
        .expect(42, "hello from python exit 42\n")?;
    Ok(())
}

/// A server answers `body` to ten requests on one connection and to a new connection, 500 to
/// `/trap`, and goes on answering after it.
fn serves(label: &str, image: &'static TestImage, port: u16, body: &str) -> Result<()> {
    let program = format!("/{}.wasm", label);
    let server = Server::start(label, image, &program, port, &[], false)?;
    let mut connection = Connection::open(port)?;
    for i in 0..10 {
        let response = connection.request("GET", &format!("/{i}"), &[])?;
        response.expect_status(200)?;
        ensure!(response.body == body, "{label}, request {i}: {response:?}");
    }
    get(port, "/trap", &[])?.expect_status(500)?;
    let after = get(port, "/after-trap", &[])?;
    after.expect_status(200)?;
    ensure!(after.body == body, "{label}, after the trap: {after:?}");
    server.stop()?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_python_wasi_0_2_server_answers() -> Result<()> {
    serves(
        "python-http-p2",
        &PYTHON_HTTP_P2,
        18191,
        "hello from python (wasi:http 0.2)\n",
    )
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_python_wasi_0_3_server_answers() -> Result<()> {
    serves(
        "python-http-p3",
        &PYTHON_HTTP_P3,
        18192,
        "hello from python (wasi:http 0.3)\n",
    )
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_javascript_server_answers() -> Result<()> {
    serves("js-http", &JS_HTTP, 18193, "hello from javascript\n")
}
