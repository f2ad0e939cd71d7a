//! Spin OCI artifacts (`spin registry push`'s layout) on `containerd-shim-spin-v2`: the locked
//! app and the components' modules are layers containerd 1.7 and 2.x leave packed, so the
//! rootfs is empty and the shim reads them from containerd's content store. The apps answer as
//! their `/spin.toml` images do (tests/spin.rs). containerd 1.6.20 refuses such images itself,
//! before any shim.

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::component_server::Server;
use shim_conformance::container::Container;
use shim_conformance::engines::{Runtime, SPIN};
use shim_conformance::http::get;
use shim_conformance::images::{SPIN_HELLO_OCI, SPIN_ROUTES_OCI, TestImage};
use shim_conformance::leftovers::expect_no_leftovers;

/// SpinKube's command for a Spin app's container.
const COMMAND: &str = "/";

fn spin() -> &'static Runtime {
    if let Err(e) = SPIN.locate() {
        panic!("the spin shim is needed for these tests: {e:#}");
    }
    &SPIN
}

fn app(label: &str, image: &'static TestImage, port: u16) -> Result<(Server, String)> {
    let container = Container::new(label, spin(), image)
        .net_host()
        .env(&format!("SPIN_HTTP_LISTEN_ADDR=127.0.0.1:{port}"));
    let id = container.id().to_string();
    Ok((Server::launch(container, COMMAND, port)?, id))
}

/// containerd 1.6 cannot unpack such images.
fn containerd_before_1_7() -> bool {
    std::env::var("WASM_SHIMS_CONTAINERD_VERSION").is_ok_and(|v| v.starts_with("1.6."))
}

/// On containerd 1.6, the import fails with containerd's own error; `true` when that is so.
fn refused_by_containerd_1_6(image: &TestImage) -> Result<bool> {
    if !containerd_before_1_7() {
        return Ok(false);
    }
    let error = match image.ensure_imported() {
        Ok(()) => bail!("containerd 1.6 imported and unpacked {}", image.reference),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        error.contains("mismatched image rootfs and manifest layers"),
        "containerd 1.6 refused {} otherwise: {error}",
        image.reference
    );
    Ok(true)
}

/// spin-hello's artifact: its one component answers on every path.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_pushed_spin_app_answers_as_its_spin_toml_image_does() -> Result<()> {
    if refused_by_containerd_1_6(&SPIN_HELLO_OCI)? {
        return Ok(());
    }
    let port = 18283;
    let (server, id) = app("spin-hello-oci", &SPIN_HELLO_OCI, port)?;
    for path in ["/", "/hello", "/a/b?c=d"] {
        let response = get(port, path, &[])?;
        response.expect_status(200)?;
        ensure!(
            response.body == "Hello from Wasm on Kubernetes!",
            "{path}: {response:?}"
        );
    }
    server.stop()?;
    expect_no_leftovers(&id)
}

/// spin-routes' artifact: three components from three layers, each route to its own.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_pushed_app_routes_to_each_component_of_its_layers() -> Result<()> {
    if refused_by_containerd_1_6(&SPIN_ROUTES_OCI)? {
        return Ok(());
    }
    let port = 18284;
    let (server, id) = app("spin-routes-oci", &SPIN_ROUTES_OCI, port)?;
    let users = get(port, "/users/42", &[])?;
    users.expect_status(200)?;
    for line in ["users: id=42", "spin-matched-route=/users/:id"] {
        ensure!(
            users.body.lines().any(|l| l == line),
            "GET /users/42: no line {line:?}: {users:?}"
        );
    }
    let assets = get(port, "/static/css/site.css", &[])?;
    assets.expect_status(200)?;
    ensure!(
        assets
            .body
            .lines()
            .any(|l| l == "static: path-info=/css/site.css"),
        "GET /static/css/site.css: {assets:?}"
    );
    let root = get(port, "/", &[])?;
    root.expect_status(200)?;
    ensure!(root.body == "root\n", "GET /: {root:?}");
    get(port, "/nothing", &[])?
        .expect_status(404)
        .context("GET /nothing")?;
    server.stop()?;
    expect_no_leftovers(&id)
}
