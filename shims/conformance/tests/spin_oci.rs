//! Spin OCI artifacts (`spin registry push`'s layout) on `containerd-shim-spin-v2`: the locked
//! app and the components' modules are layers containerd 1.7 and 2.x leave packed, so the
//! rootfs is empty and the shim reads them from containerd's content store. The apps answer as
//! their `/spin.toml` images do (tests/spin.rs). containerd 1.6.20 refuses such images itself,
//! before any shim.

use anyhow::{Context, Result, bail, ensure};
use image_builder::{
    ImageBuilder, LockedAppPlace, SpinComponent, spin_artifact, wasi_print_module,
};
use serde_json::{Value, json};
use shim_conformance::expect::failed_at_create;
use shim_conformance::http::get;
use shim_conformance::images::{SPIN_HELLO_OCI, SPIN_ROUTES_OCI, TestImage};
use shim_conformance::leftovers::expect_no_leftovers;
use shim_conformance::spin_app::{COMMAND, app, container};

/// A Spin artifact of one component `hello` (a plain WASI command) on the route `/...`, after
/// `change` to its locked app.
fn bad_artifact(reference: &str, change: fn(&mut Value)) -> Result<ImageBuilder> {
    let mut locked = json!({
        "spin_lock_version": 1,
        "metadata": { "name": "bad" },
        "triggers": [{
            "id": "hello-http-trigger",
            "trigger_type": "http",
            "trigger_config": { "component": "hello", "route": "/..." }
        }],
        "components": [{ "id": "hello" }]
    });
    change(&mut locked);
    let hello = SpinComponent {
        module: wasi_print_module("hello")?,
        files: Default::default(),
    };
    spin_artifact(
        ImageBuilder::new(reference).platform("wasi", "wasm"),
        locked,
        &[("hello".to_string(), hello)].into(),
        LockedAppPlace::Layer,
    )
}

/// More than the 128 bytes Spin inlines: a data layer of its own.
fn big_asset() -> String {
    "a line of a file too big to inline\n".repeat(8)
}

/// spin-outbound (test-images/spin-outbound) pushed with two files under `assets/`: a small
/// one Spin inlines in the locked app and a bigger one in a data layer.
static SPIN_OUTBOUND_OCI: TestImage = TestImage::built(
    "docker.io/library/spin-outbound-oci:latest",
    "wasi/wasm",
    || {
        let locked = json!({
            "spin_lock_version": 1,
            "metadata": { "name": "spin-outbound", "triggers": { "http": {} } },
            "triggers": [{
                "id": "outbound-http-trigger",
                "trigger_type": "http",
                "trigger_config": { "component": "outbound", "route": "/..." }
            }],
            "components": [{
                "id": "outbound",
                "metadata": { "allowed_outbound_hosts": ["http://127.0.0.1:18291"] }
            }]
        });
        let outbound = SpinComponent {
            module: read_target_module("wasm32-wasip2/release/spin_outbound.wasm")?,
            files: [
                (
                    "assets/hello.txt".to_string(),
                    b"an asset of spin-outbound\n".to_vec(),
                ),
                ("assets/big.txt".to_string(), big_asset().into_bytes()),
            ]
            .into(),
        };
        spin_artifact(
            ImageBuilder::new("docker.io/library/spin-outbound-oci:latest")
                .platform("wasi", "wasm"),
            locked,
            &[("outbound".to_string(), outbound)].into(),
            LockedAppPlace::Layer,
        )
    },
);

/// A module of the target directory (scripts/build-test-images.sh builds them).
fn read_target_module(path: &str) -> Result<Vec<u8>> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let module_path = target.join(path);
    std::fs::read(&module_path).with_context(|| {
        format!(
            "cannot read {}: run scripts/build-test-images.sh",
            module_path.display()
        )
    })
}

/// spin-hello as older Spin releases pushed it: the locked app is the manifest's config.
static SPIN_HELLO_OLDER: TestImage = TestImage::built(
    "docker.io/library/spin-hello-oci-older:latest",
    "wasi/wasm",
    || {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-images");
        let locked = std::fs::read(dir.join("spin-hello/spin.lock.json"))?;
        let hello = SpinComponent {
            module: read_target_module("wasm32-wasip1/release/spin_hello.wasm")?,
            files: Default::default(),
        };
        spin_artifact(
            ImageBuilder::new("docker.io/library/spin-hello-oci-older:latest")
                .platform("wasi", "wasm"),
            serde_json::from_slice(&locked)?,
            &[("spin-hello".to_string(), hello)].into(),
            LockedAppPlace::Config,
        )
    },
);

static UNKNOWN_COMPONENT: TestImage = TestImage::built(
    "docker.io/library/spin-oci-bad-component:latest",
    "wasi/wasm",
    || {
        bad_artifact("docker.io/library/spin-oci-bad-component:latest", |l| {
            l["triggers"][0]["trigger_config"]["component"] = "nowhere".into()
        })
    },
);

/// A file whose content is in no layer.
const ABSENT: &str = "sha256:5e0b51fe6e6b5b11e8d7c2b7a0f8d2a1c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8";

static ABSENT_FILE: TestImage = TestImage::built(
    "docker.io/library/spin-oci-bad-file:latest",
    "wasi/wasm",
    || {
        bad_artifact("docker.io/library/spin-oci-bad-file:latest", |l| {
            l["components"][0]["files"] = json!([{ "digest": ABSENT, "path": "data/big.txt" }])
        })
    },
);

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
    let server = app("spin-hello-oci", &SPIN_HELLO_OCI, port)?;
    let id = server.container.id().to_string();
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

/// A component's files, inlined in the locked app or in a data layer, are in its `files`
/// directory as `spin registry push` listed them.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_pushed_apps_files_are_seen_by_its_component() -> Result<()> {
    if refused_by_containerd_1_6(&SPIN_OUTBOUND_OCI)? {
        return Ok(());
    }
    let port = 18287;
    let server = app("spin-outbound-oci", &SPIN_OUTBOUND_OCI, port)?;
    let id = server.container.id().to_string();
    let small = get(port, "/file?path=/assets/hello.txt", &[])?;
    small.expect_status(200)?;
    ensure!(
        small.body == "an asset of spin-outbound\n",
        "inlined file: {small:?}"
    );
    let big = get(port, "/file?path=/assets/big.txt", &[])?;
    big.expect_status(200)?;
    ensure!(big.body == big_asset(), "data layer file: {big:?}");
    get(port, "/file?path=/spin.lock.json", &[])?
        .expect_status(404)
        .context("the rootfs outside the component's files")?;
    server.stop()?;
    expect_no_leftovers(&id)
}

/// The older layout, the locked app as the manifest's config: the shim reads it (unit tests of
/// `wasm_layers`), but containerd's client refuses to create a container of an image whose
/// config is not an image config, before any shim. Should a containerd take it, this test says
/// so and the check becomes that the app answers.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn an_older_push_with_the_locked_app_as_config_is_refused_by_containerd() -> Result<()> {
    let expected =
        "unknown image config media type application/vnd.fermyon.spin.application.v1+config";
    if containerd_before_1_7() {
        let error = match SPIN_HELLO_OLDER.ensure_imported() {
            Ok(()) => String::new(),
            Err(e) => format!("{e:#}"),
        };
        if error.contains("mismatched image rootfs and manifest layers") {
            return Ok(());
        }
    }
    let older = container("spin-hello-older", &SPIN_HELLO_OLDER, 18286);
    let out = older.run(&[COMMAND])?;
    ensure!(
        out.code != Some(0) && out.stderr.contains(expected),
        "containerd ran an older Spin artifact (check now that it answers), or refused it \
         otherwise: {}",
        out.describe()
    );
    expect_no_leftovers(older.id())
}

/// spin-routes' artifact: three components from three layers, each route to its own.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_pushed_app_routes_to_each_component_of_its_layers() -> Result<()> {
    if refused_by_containerd_1_6(&SPIN_ROUTES_OCI)? {
        return Ok(());
    }
    let port = 18284;
    let server = app("spin-routes-oci", &SPIN_ROUTES_OCI, port)?;
    let id = server.container.id().to_string();
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

/// An artifact the shim cannot serve fails `create` naming the locked app (or the layer and
/// file) and what is wrong, and leaves nothing behind.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn bad_artifacts_fail_at_create_naming_what_is_wrong() -> Result<()> {
    type Case = (
        &'static str,
        &'static TestImage,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: [Case; 2] = [
        (
            "spin-oci-bad-component",
            &UNKNOWN_COMPONENT,
            &["/spin.lock.json", "trigger.http[0].component", "nowhere"],
            &["unknown component"],
        ),
        (
            "spin-oci-bad-file",
            &ABSENT_FILE,
            &["component hello", "data/big.txt", ABSENT],
            &["in no data or archive layer"],
        ),
    ];
    for (label, image, names, reasons) in cases {
        if refused_by_containerd_1_6(image)? {
            continue;
        }
        let bad = container(label, image, 18285);
        let out = bad.run(&[COMMAND])?;
        failed_at_create(&out, names, reasons).with_context(|| label.to_string())?;
        expect_no_leftovers(bad.id())?;
    }
    Ok(())
}
