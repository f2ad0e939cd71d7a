//! A locked app as `spin registry push` writes it, of this file's own writing: an app with
//! variables, a static route, a private endpoint, files, outbound hosts and stores.

use std::path::{Path, PathBuf};

use super::*;
use crate::manifest::{ComponentSource, FileMount, HttpHandler, HttpRoute};

const HELLO: &str = "sha256:4f2a0c5e9b1d7a3c6e8f0b2d4a6c8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d";
const API: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn locked_app() -> Json {
    serde_json::json!({
        "spin_lock_version": 1,
        "must_understand": ["host_requirements"],
        "metadata": {
            "name": "shop",
            "version": "1.2.0",
            "description": "A shop front and its API",
            "authors": ["Ada <ada@example.com>"],
            "origin": "file:///home/ada/shop/spin.toml",
            "triggers": { "http": { "base": "/" } },
            "trigger": { "type": "http", "base": "/" }
        },
        "host_requirements": { "local_service_chaining": "optional" },
        "variables": {
            "api_token": { "secret": true },
            "greeting": { "default": "hello", "description": "what the front says" }
        },
        "triggers": [
            {
                "id": "front-http-trigger",
                "trigger_type": "http",
                "trigger_config": { "component": "front", "route": "/...", "executor": { "type": "http" } }
            },
            {
                "id": "api-http-trigger",
                "trigger_type": "http",
                "trigger_config": { "component": "api", "route": "/api/:version/..." }
            },
            {
                "id": "internal",
                "trigger_type": "http",
                "trigger_config": { "component": "api", "route": { "private": true } }
            },
            {
                "id": "health",
                "trigger_type": "http",
                "trigger_config": {
                    "route": "/healthz",
                    "static_response": { "status_code": 204, "headers": { "x-ok": "yes" } }
                }
            }
        ],
        "components": [
            {
                "id": "front",
                "metadata": {
                    "description": "The shop front",
                    "allowed_outbound_hosts": ["https://api.example.com", "https://{{ cdn }}"],
                    "key_value_stores": ["default"],
                    "databases": [],
                    "ai_models": []
                },
                "source": { "content_type": "application/wasm", "digest": HELLO },
                "env": { "RUST_LOG": "info" },
                "files": [
                    { "inline": "aGkK", "digest": "sha256:98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4", "path": "hi.txt" },
                    { "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "path": "static/index.html" }
                ],
                "config": { "greeting": "{{ greeting }}", "cdn": "cdn.example.com" }
            },
            {
                "id": "api",
                "metadata": { "allowed_outbound_hosts": [] },
                "source": { "content_type": "application/wasm", "digest": API }
            }
        ]
    })
}

fn read(json: &Json) -> Result<Manifest, ManifestError> {
    parse(&json.to_string(), Path::new(LOCKED_APP))
}

fn error(json: &Json) -> String {
    read(json).unwrap_err().to_string()
}

#[test]
fn a_pushed_app_reads_as_its_spin_toml_would() {
    let manifest = read(&locked_app()).unwrap();
    let app = manifest.application();
    assert_eq!(app.name(), "shop");
    assert_eq!(app.version(), "1.2.0");
    assert_eq!(app.authors(), ["Ada <ada@example.com>"]);
    assert_eq!(manifest.http_base(), "/");

    let token = &manifest.variables()["api_token"];
    assert!(token.is_required() && token.is_secret());
    assert_eq!(manifest.variables()["greeting"].default(), Some("hello"));

    let triggers = manifest.http_triggers();
    assert_eq!(triggers.len(), 4);
    assert_eq!(triggers[0].id(), "front-http-trigger");
    assert_eq!(triggers[0].route(), &HttpRoute::Path("/...".into()));
    assert_eq!(triggers[1].component(), Some("api"));
    assert_eq!(triggers[2].route(), &HttpRoute::Private);
    let HttpHandler::StaticResponse(health) = triggers[3].handler() else {
        panic!("{:?}", triggers[3]);
    };
    assert_eq!(health.status(), 204);

    let front = manifest.component("front").unwrap();
    let ComponentSource::Local(module) = front.source() else {
        panic!("{:?}", front.source());
    };
    // The module the shim wrote from the component's layer, beside the locked app.
    assert_eq!(
        manifest.resolve(module),
        PathBuf::from(format!("/{}.wasm", &HELLO[7..]))
    );
    assert_eq!(front.description(), "The shop front");
    assert_eq!(front.environment()["RUST_LOG"], "info");
    assert_eq!(front.variables()["greeting"], "{{ greeting }}");
    assert_eq!(
        front.allowed_outbound_hosts(),
        ["https://api.example.com", "https://{{ cdn }}"]
    );
    assert_eq!(front.key_value_stores(), ["default"]);
    // Every file is in the component's directory of the rootfs, mounted at the guest's `/`.
    assert_eq!(
        front.files(),
        [FileMount::Placement {
            source: "spin-assets/front".into(),
            destination: "/".into(),
        }]
    );
    assert_eq!(
        manifest.resolve("spin-assets/front"),
        PathBuf::from("/spin-assets/front")
    );
    let api = manifest.component("api").unwrap();
    assert!(api.files().is_empty() && api.environment().is_empty());
}

#[test]
fn older_locked_apps_read_too() {
    // Spin 2's: version 0, the trigger settings only in `metadata.trigger`, no variables.
    let mut app = locked_app();
    app["spin_lock_version"] = 0.into();
    app.as_object_mut().unwrap().remove("must_understand");
    app.as_object_mut().unwrap().remove("host_requirements");
    let metadata = app["metadata"].as_object_mut().unwrap();
    metadata.remove("triggers");
    metadata.insert(
        "trigger".into(),
        serde_json::json!({ "type": "http", "base": "/shop" }),
    );
    let manifest = read(&app).unwrap();
    assert_eq!(manifest.http_base(), "/shop");
}

/// A change to the locked app.
type Change = Box<dyn Fn(&mut Json)>;

#[test]
fn a_bad_locked_app_is_named_with_its_field() {
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|a| a["spin_lock_version"] = 7.into()),
            "/spin.lock.json: spin_lock_version: unsupported version 7",
        ),
        (
            Box::new(
                |a| a["components"][1]["source"] = serde_json::json!({ "content_type": "application/wasm", "source": "file:///home/ada/api.wasm" }),
            ),
            "/spin.lock.json: components[1].source.digest: missing: the module is file:///home/ada/api.wasm, outside the image",
        ),
        (
            Box::new(|a| a["components"][0]["source"]["digest"] = "sha512:ab".into()),
            "/spin.lock.json: components[0].source.digest: \"sha512:ab\" is not a sha256: digest",
        ),
        (
            Box::new(|a| {
                a["components"][1]["dependencies"] =
                    serde_json::json!({ "a:b/c": { "source": { "digest": API } } })
            }),
            "/spin.lock.json: components[1].dependencies: component dependencies",
        ),
        (
            Box::new(|a| a["host_requirements"]["local_service_chaining"] = "required".into()),
            "/spin.lock.json: host_requirements.local_service_chaining: the application requires",
        ),
        (
            Box::new(|a| a["must_understand"] = serde_json::json!(["time_travel"])),
            "/spin.lock.json: must_understand[0]: \"time_travel\" is not understood",
        ),
        (
            Box::new(|a| a["triggers"][0]["trigger_config"] = serde_json::json!("x")),
            "/spin.lock.json: triggers[0].trigger_config: expected an object",
        ),
        (
            Box::new(|a| a["triggers"][1]["trigger_config"]["component"] = Json::Null),
            "/spin.lock.json: triggers[1].trigger_config.component: null",
        ),
        // The shared checks of spin.toml: the field of the manifest the app came from.
        (
            Box::new(|a| a["triggers"][1]["trigger_config"]["component"] = "nowhere".into()),
            "/spin.lock.json: trigger.http[1].component: unknown component \"nowhere\"",
        ),
        (
            Box::new(|a| {
                a["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("name")
                    .map(drop)
                    .unwrap()
            }),
            "/spin.lock.json: application.name: missing",
        ),
    ];
    for (change, expected) in cases {
        let mut app = locked_app();
        change(&mut app);
        let error = error(&app);
        assert!(
            error.starts_with(expected),
            "expected {expected:?}, got {error:?}"
        );
    }
    let not_json = parse("{", Path::new(LOCKED_APP)).unwrap_err().to_string();
    assert!(
        not_json.starts_with("/spin.lock.json: not valid JSON"),
        "{not_json}"
    );
}

#[test]
fn the_file_name_chooses_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("spin.lock.json");
    std::fs::write(&locked, locked_app().to_string()).unwrap();
    let manifest = read_manifest(&locked, "/spin.toml").unwrap();
    assert_eq!(manifest.file(), Path::new(LOCKED_APP));
    let toml = dir.path().join("spin.toml");
    std::fs::write(&toml, "spin_manifest_version = 2\n").unwrap();
    let error = read_manifest(&toml, "/spin.toml").unwrap_err();
    assert!(
        format!("{error:#}").starts_with("/spin.toml: application: missing"),
        "{error:#}"
    );
}
