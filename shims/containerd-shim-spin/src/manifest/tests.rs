//! Where a test pins Spin's behaviour, it says where Spin has it: `crates/manifest`
//! (`schema/v2.rs`, `schema/common.rs`, `normalize.rs`, `lib.rs`), `crates/loader`
//! (`local.rs`), `crates/http/src/config.rs` and `crates/trigger-http/src/lib.rs`.

use std::path::Path;

use super::*;

/// What `spin new -t http-rust` writes.
const SEED: &str = r#"
spin_manifest_version = 2

[application]
name = "hello-k8s"
version = "0.1.0"
authors = ["Someone <someone@example.com>"]
description = ""

[[trigger.http]]
route = "/..."
component = "hello-k8s"

[component.hello-k8s]
source = "target/wasm32-wasip1/release/hello_k8s.wasm"
allowed_outbound_hosts = []
[component.hello-k8s.build]
command = "cargo build --target wasm32-wasip1 --release"
watch = ["src/**/*.rs", "Cargo.toml"]
"#;

fn ok(text: &str) -> Manifest {
    parse(text, Path::new("spin.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    parse(text, Path::new("spin.toml"))
        .expect_err("should not parse")
        .to_string()
}

/// A valid manifest's header, to which a test adds triggers and components.
fn app(rest: &str) -> String {
    format!("spin_manifest_version = 2\n[application]\nname = \"app\"\n{rest}")
}

#[test]
fn seed_manifest() {
    let m = parse(SEED, Path::new("/apps/hello/spin.toml")).unwrap();
    let a = m.application();
    assert_eq!(a.name(), "hello-k8s");
    assert_eq!(a.version(), "0.1.0");
    assert_eq!(a.description(), "");
    assert_eq!(a.authors(), ["Someone <someone@example.com>"]);
    assert_eq!(m.http_base(), "/");
    assert!(m.variables().is_empty());
    assert!(m.other_triggers().is_empty());
    m.check_http_only().unwrap();

    let [trigger] = m.http_triggers() else {
        panic!("one trigger");
    };
    assert_eq!(trigger.index(), 0);
    assert_eq!(trigger.route(), &HttpRoute::Path("/...".to_owned()));
    assert_eq!(trigger.component(), Some("hello-k8s"));
    assert_eq!(trigger.executor(), &HttpExecutor::Http);
    // normalize.rs: `<component>-<type>-trigger`.
    assert_eq!(trigger.id(), "hello-k8s-http-trigger");

    let c = m.component("hello-k8s").unwrap();
    assert_eq!(c.id(), "hello-k8s");
    let source = Path::new("target/wasm32-wasip1/release/hello_k8s.wasm");
    assert_eq!(c.source(), &ComponentSource::Local(source.to_owned()));
    assert!(c.allowed_outbound_hosts().is_empty());
    assert!(c.files().is_empty() && c.environment().is_empty() && c.variables().is_empty());
    assert_eq!(m.app_dir(), Path::new("/apps/hello"));
    assert_eq!(
        m.resolve(source),
        Path::new("/apps/hello/target/wasm32-wasip1/release/hello_k8s.wasm")
    );
}

#[test]
fn several_components() {
    let m = ok(&app(r#"
description = "a shop"

[application.trigger.http]
base = "/"

[variables]
api_host = { default = "api.example.com" }
api_token = { required = true, secret = true, description = "the API's token" }

[[trigger.http]]
route = "/api/..."
component = "api"

[[trigger.http]]
route = "/static/..."
component = "files"

[[trigger.http]]
route = "/users/:id"
component = "api"

[component.api]
source = { url = "https://example.com/api.wasm", digest = "sha256:0123abcd" }
description = "the API"
allowed_outbound_hosts = ["https://{{ api_host }}", "redis://localhost:6379"]
key_value_stores = ["default", "user-sessions", "cart_items"]
sqlite_databases = ["default"]
ai_models = ["llama2-chat"]
environment = { RUST_LOG = "info", "dotted.name" = "x" }
variables = { token = "{{ api_token }}", endpoint = "https://{{ api_host }}/v1" }

[component.files]
source = "static.wasm"
files = ["assets/**/*", { source = "public", destination = "/" }]
exclude_files = ["assets/secret.txt"]
"#));
    assert_eq!(m.application().description(), "a shop");

    let vars = m.variables();
    assert_eq!(vars["api_host"].default(), Some("api.example.com"));
    assert!(!vars["api_host"].is_required() && !vars["api_host"].is_secret());
    assert_eq!(vars["api_token"].default(), None);
    assert!(vars["api_token"].is_required() && vars["api_token"].is_secret());
    assert_eq!(vars["api_token"].description(), Some("the API's token"));

    let routes: Vec<(Option<&str>, Option<&str>, &str)> = m
        .http_triggers()
        .iter()
        .map(|t| (t.route().path(), t.component(), t.id()))
        .collect();
    // The second trigger of `api` cannot have `api-http-trigger` again: Spin counts.
    assert_eq!(
        routes,
        [
            (Some("/api/..."), Some("api"), "api-http-trigger"),
            (Some("/static/..."), Some("files"), "files-http-trigger"),
            (Some("/users/:id"), Some("api"), "http-trigger1"),
        ]
    );

    let api = m.component("api").unwrap();
    assert_eq!(api.description(), "the API");
    assert_eq!(
        api.source(),
        &ComponentSource::Remote {
            url: "https://example.com/api.wasm".to_owned(),
            digest: "sha256:0123abcd".to_owned(),
        }
    );
    assert_eq!(
        api.allowed_outbound_hosts(),
        ["https://{{ api_host }}", "redis://localhost:6379"]
    );
    assert_eq!(
        api.key_value_stores(),
        ["default", "user-sessions", "cart_items"]
    );
    assert_eq!(api.sqlite_databases(), ["default"]);
    assert_eq!(api.ai_models(), ["llama2-chat"]);
    assert_eq!(api.environment()["RUST_LOG"], "info");
    assert_eq!(api.environment()["dotted.name"], "x");
    assert_eq!(api.variables()["token"], "{{ api_token }}");
    assert_eq!(api.variables()["endpoint"], "https://{{ api_host }}/v1");

    let files = m.component("files").unwrap();
    assert_eq!(
        files.files(),
        [
            FileMount::Pattern("assets/**/*".to_owned()),
            FileMount::Placement {
                source: "public".to_owned(),
                destination: "/".to_owned(),
            },
        ]
    );
    assert_eq!(files.exclude_files(), ["assets/secret.txt"]);
    let ids: Vec<&str> = m.components().keys().map(String::as_str).collect();
    assert_eq!(ids, ["api", "files"]);
}

#[test]
fn registry_source() {
    let m = ok(&app(r#"
[[trigger.http]]
route = "/"
component = "c"
[component.c]
source = { registry = "ttl.sh", package = "user:registrytest", version = "1.0.0" }
"#));
    assert_eq!(
        m.component("c").unwrap().source(),
        &ComponentSource::Registry {
            registry: Some("ttl.sh".to_owned()),
            package: "user:registrytest".to_owned(),
            version: "1.0.0".to_owned(),
        }
    );
}

#[test]
fn inline_components() {
    // normalize.rs: a trigger without id gets `<type>-trigger<N>` (it names no component
    // id), and its inline component `<trigger id>-component`.
    let m = ok(&app(r#"
[[trigger.http]]
route = "/a"
component = { source = "a.wasm", allowed_outbound_hosts = ["https://example.com"] }

[[trigger.http]]
route = "/b"
component = { source = "b.wasm" }

[[trigger.http]]
id = "api"
route = "/c"
component = { source = "c.wasm" }
"#));
    let ids: Vec<(&str, Option<&str>)> = m
        .http_triggers()
        .iter()
        .map(|t| (t.id(), t.component()))
        .collect();
    assert_eq!(
        ids,
        [
            ("http-trigger1", Some("http-trigger1-component")),
            ("http-trigger2", Some("http-trigger2-component")),
            ("api", Some("api-component")),
        ]
    );
    let a = m.component("http-trigger1-component").unwrap();
    assert_eq!(a.source(), &ComponentSource::Local("a.wasm".into()));
    assert_eq!(a.allowed_outbound_hosts(), ["https://example.com"]);
    assert_eq!(m.components().len(), 3);
}

#[test]
fn inline_component_id_fallback() {
    // normalize.rs: when `<trigger id>-component` is not a valid id (the trigger's id has
    // an underscore) or is taken, `inline-component<N>` with the first free N.
    let m = ok(&app(r#"
[[trigger.http]]
id = "my_trigger"
route = "/a"
component = { source = "a.wasm" }

[[trigger.http]]
id = "taken"
route = "/b"
component = { source = "b.wasm" }

[component.taken-component]
source = "t.wasm"

[component.inline-component2]
source = "other.wasm"
"#));
    let ids: Vec<Option<&str>> = m.http_triggers().iter().map(|t| t.component()).collect();
    assert_eq!(ids, [Some("inline-component1"), Some("inline-component3")]);
    assert_eq!(
        m.component("inline-component3").unwrap().source(),
        &ComponentSource::Local("b.wasm".into())
    );
}

#[test]
fn reference_to_a_later_inline_component() {
    // normalize.rs moves every inline component into the components before the loader
    // looks any reference up, so an earlier trigger may name it.
    let m = ok(&app(r#"
[[trigger.http]]
route = "/a"
component = "http-trigger1-component"

[[trigger.http]]
route = "/b"
component = { source = "b.wasm" }
"#));
    let ids: Vec<(&str, Option<&str>)> = m
        .http_triggers()
        .iter()
        .map(|t| (t.id(), t.component()))
        .collect();
    // The first trigger names a component: its id is the natural one, and the inline
    // component's trigger counts from 1.
    assert_eq!(
        ids,
        [
            (
                "http-trigger1-component-http-trigger",
                Some("http-trigger1-component")
            ),
            ("http-trigger1", Some("http-trigger1-component")),
        ]
    );
}

#[test]
fn trigger_ids_skip_taken_ones() {
    // normalize.rs: explicit ids are taken before any is generated.
    let m = ok(&app(r#"
[[trigger.http]]
route = "/a"
component = { source = "a.wasm" }

[[trigger.http]]
id = "http-trigger1"
route = "/b"
component = "c"

[[trigger.http]]
id = "c-http-trigger"
route = "/c"
component = "c"

[[trigger.http]]
route = "/d"
component = "c"

[component.c]
source = "c.wasm"
"#));
    let ids: Vec<&str> = m.http_triggers().iter().map(HttpTrigger::id).collect();
    assert_eq!(
        ids,
        [
            "http-trigger2",
            "http-trigger1",
            "c-http-trigger",
            "http-trigger3"
        ]
    );
}

#[test]
fn private_route() {
    // routes/src/lib.rs: `{ private = true }` is not routed.
    let m = ok(&app(r#"
[[trigger.http]]
route = { private = true }
component = "internal"
[component.internal]
source = "internal.wasm"
"#));
    let trigger = &m.http_triggers()[0];
    assert_eq!(trigger.route(), &HttpRoute::Private);
    assert_eq!(trigger.route().path(), None);
    assert_eq!(trigger.component(), Some("internal"));

    // `{ private = false }` is refused.
    assert_eq!(
        err(&app(r#"
[[trigger.http]]
route = { private = false }
component = "c"
[component.c]
source = "c.wasm"
"#)),
        "spin.toml: trigger.http[0].route: must be a route pattern or { private = true }"
    );
}

#[test]
fn static_response() {
    // http/src/config.rs: a trigger has a component or a static_response.
    let m = ok(&app(r#"
[[trigger.http]]
route = "/health"
static_response = { status_code = 204, headers = { x-served-by = "host" } }

[[trigger.http]]
route = "/hello"
static_response = { body = "hello" }
"#));
    let [health, hello] = m.http_triggers() else {
        panic!("two triggers");
    };
    let HttpHandler::StaticResponse(r) = health.handler() else {
        panic!("static");
    };
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["x-served-by"], "host");
    assert_eq!(r.body(), None);
    assert_eq!(health.component(), None);
    let HttpHandler::StaticResponse(r) = hello.handler() else {
        panic!("static");
    };
    assert_eq!((r.status(), r.body()), (200, Some("hello")));

    assert_eq!(
        err(&app("[[trigger.http]]\nroute = \"/\"\n")),
        "spin.toml: trigger.http[0].component: missing: give a component or a static_response"
    );
    assert_eq!(
        err(&app(r#"
[[trigger.http]]
route = "/"
component = "c"
static_response = { body = "x" }
[component.c]
source = "c.wasm"
"#)),
        "spin.toml: trigger.http[0].static_response: a trigger has a component or a static_response, not both"
    );
    assert_eq!(
        err(&app(
            "[[trigger.http]]\nroute = \"/\"\nstatic_response = { status_code = 42 }\n"
        )),
        "spin.toml: trigger.http[0].static_response.status_code: expected an HTTP status from 100 to 999, found 42"
    );
}

#[test]
fn executors() {
    let m = ok(&app(r#"
[[trigger.http]]
route = "/a"
component = "c"
executor = { type = "spin" }

[[trigger.http]]
route = "/b"
component = "c"
executor = { type = "wagi" }

[[trigger.http]]
route = "/c"
component = "c"
executor = { type = "wagi", argv = "${SCRIPT_NAME} -x", entrypoint = "main" }

[component.c]
source = "c.wasm"
"#));
    let executors: Vec<&HttpExecutor> = m.http_triggers().iter().map(|t| t.executor()).collect();
    assert_eq!(
        executors,
        [
            &HttpExecutor::Http,
            // config.rs: WagiTriggerConfig's defaults.
            &HttpExecutor::Wagi {
                argv: "${SCRIPT_NAME} ${ARGS}".to_owned(),
                entrypoint: "_start".to_owned(),
            },
            &HttpExecutor::Wagi {
                argv: "${SCRIPT_NAME} -x".to_owned(),
                entrypoint: "main".to_owned(),
            },
        ]
    );
    assert_eq!(
        err(&app(r#"
[[trigger.http]]
route = "/"
component = "c"
executor = { type = "cgi" }
[component.c]
source = "c.wasm"
"#)),
        "spin.toml: trigger.http[0].executor.type: unknown executor \"cgi\": expected \"http\" or \"wagi\""
    );
}

#[test]
fn other_trigger_types_are_collected() {
    let m = ok(&app(r#"
[[trigger.http]]
route = "/..."
component = "web"

[[trigger.redis]]
channel = "messages"
component = "worker"

[[trigger.cron]]
cron_expression = "1/2 * * * * *"
component = { source = "cron.wasm" }

[component.web]
source = "web.wasm"
[component.worker]
source = "worker.wasm"
"#));
    assert_eq!(m.http_triggers().len(), 1);
    let others: Vec<(&str, usize, &str, Option<&str>)> = m
        .other_triggers()
        .iter()
        .map(|t| (t.trigger_type(), t.index(), t.id(), t.component()))
        .collect();
    assert_eq!(
        others,
        [
            ("cron", 0, "cron-trigger1", Some("cron-trigger1-component")),
            ("redis", 0, "worker-redis-trigger", Some("worker")),
        ]
    );
    let e = m.check_http_only().unwrap_err();
    assert_eq!(
        e.to_string(),
        "spin.toml: trigger.cron: trigger types \"cron\", \"redis\" are not supported: \
         containerd-shim-spin runs HTTP triggers only"
    );
    assert_eq!(e.field(), Some("trigger.cron"));

    let only_redis = ok(&app(r#"
[[trigger.redis]]
channel = "messages"
component = "worker"
[component.worker]
source = "worker.wasm"
"#));
    assert!(only_redis.http_triggers().is_empty());
    assert_eq!(
        only_redis.check_http_only().unwrap_err().to_string(),
        "spin.toml: trigger.redis: trigger type \"redis\" is not supported: \
         containerd-shim-spin runs HTTP triggers only"
    );
    // Other types' settings are theirs: not checked here.
    ok(&app(r#"
[application.trigger.redis]
address = "redis://localhost:6379"
[[trigger.mqtt]]
address = "mqtt://localhost:1883"
anything = { goes = true }
component = "w"
[component.w]
source = "w.wasm"
"#));
}

#[test]
fn version_1_and_others_refused() {
    // lib.rs ManifestVersion::detect: "1" (or `spin_version`) is version 1, 2 is version
    // 2; this shim takes only 2.
    let v1 = r#"
spin_manifest_version = "1"
name = "old"
trigger = { type = "http", base = "/" }
[[component]]
id = "old"
source = "old.wasm"
[component.trigger]
route = "/..."
"#;
    assert_eq!(
        err(v1),
        "spin.toml: spin_manifest_version: version 1 manifest; \
         containerd-shim-spin supports only `spin_manifest_version = 2`"
    );
    assert_eq!(
        err("spin_version = \"1\"\nname = \"old\"\n"),
        "spin.toml: spin_version: version 1 manifest; \
         containerd-shim-spin supports only `spin_manifest_version = 2`"
    );
    assert_eq!(
        err("spin_manifest_version = 1\n"),
        "spin.toml: spin_manifest_version: version 1 manifest; \
         containerd-shim-spin supports only `spin_manifest_version = 2`"
    );
    assert_eq!(
        err("[application]\nname = \"x\"\n"),
        "spin.toml: spin_manifest_version: missing; \
         containerd-shim-spin supports only `spin_manifest_version = 2`"
    );
    assert_eq!(
        err("spin_manifest_version = 3\n"),
        "spin.toml: spin_manifest_version: unsupported version 3; \
         containerd-shim-spin supports only `spin_manifest_version = 2`"
    );
    assert_eq!(
        err("spin_manifest_version = \"2\"\n"),
        "spin.toml: spin_manifest_version: unsupported version \"2\"; \
         containerd-shim-spin supports only `spin_manifest_version = 2`"
    );
}

#[test]
fn errors_name_file_and_field() {
    let component_c = "[component.c]\nsource = \"c.wasm\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            app(&format!(
                "[[trigger.http]]\nroute = \"/a\"\ncomponent = \"c\"\n\
                 [[trigger.http]]\nroute = \"/b\"\ncomponent = \"foo\"\n{component_c}"
            )),
            "spin.toml: trigger.http[1].component: unknown component \"foo\"",
        ),
        (
            app("[[trigger.http]]\nroute = \"/\"\ncomponent = \"hello\"\n[component.hello]\n"),
            "spin.toml: component.hello.source: missing",
        ),
        (
            app(&format!(
                "[[trigger.http]]\nroute = \"/a/.../b\"\ncomponent = \"c\"\n{component_c}"
            )),
            "spin.toml: trigger.http[0].route: \"/a/.../b\" is not a valid route: \
             `...` may only end a route (as `/...`), not stand in the middle",
        ),
        (
            app(&format!(
                "[[trigger.http]]\ncomponent = \"c\"\n{component_c}"
            )),
            "spin.toml: trigger.http[0].route: missing",
        ),
        (
            app(&format!(
                "[[trigger.http]]\nroute = 5\ncomponent = \"c\"\n{component_c}"
            )),
            "spin.toml: trigger.http[0].route: expected a route pattern or { private = true }, found an integer",
        ),
        (
            // deny_unknown_fields on AppManifest.
            format!("{}[extra]\ncolour = \"blue\"\n", app("[trigger]\n")),
            "spin.toml: extra: unknown field; expected one of: \
             spin_manifest_version, application, variables, trigger, component",
        ),
        (
            // deny_unknown_fields on AppDetails.
            "spin_manifest_version = 2\n[application]\nname = \"x\"\nnmae = \"y\"\n[trigger]\n"
                .to_owned(),
            "spin.toml: application.nmae: unknown field; expected one of: \
             name, version, description, authors, targets, trigger, tool",
        ),
        (
            // deny_unknown_fields on Component.
            app("[trigger]\n[component.c]\nsource = \"c.wasm\"\nallowed_hosts = []\n"),
            "spin.toml: component.c.allowed_hosts: unknown field; expected one of: \
             source, description, variables, environment, files, exclude_files, \
             allowed_http_hosts, allowed_outbound_hosts, key_value_stores, sqlite_databases, \
             ai_models, targets, build, tool, profile, dependencies_inherit_configuration, \
             dependencies",
        ),
        (
            // deny_unknown_fields on HttpTriggerConfig.
            app(&format!(
                "[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\nmethod = \"GET\"\n{component_c}"
            )),
            "spin.toml: trigger.http[0].method: unknown field; expected one of: \
             id, component, route, executor, static_response",
        ),
        (
            app("[trigger]\n[component.c]\nsource = \"c.wasm\"\nallowed_outbound_hosts = [1]\n"),
            "spin.toml: component.c.allowed_outbound_hosts[0]: expected a string, found an integer",
        ),
        (
            app("[trigger]\n[component.c]\nsource = 1\n"),
            "spin.toml: component.c.source: expected a path string or a table, found an integer",
        ),
        (
            app("[trigger]\n[component.c]\nsource = \"\"\n"),
            "spin.toml: component.c.source: empty: give the path of a .wasm file",
        ),
        (
            // loader/src/local.rs: a digest must start with 'sha256:'.
            app(
                "[trigger]\n[component.c]\nsource = { url = \"https://x/c.wasm\", digest = \"md5:00\" }\n",
            ),
            "spin.toml: component.c.source.digest: \"md5:00\" must start with \"sha256:\"",
        ),
        (
            app("[trigger]\n[component.c]\nsource = { path = \"c.wasm\" }\n"),
            "spin.toml: component.c.source: expected { url = \"...\", digest = \"sha256:...\" } \
             or { registry = \"...\", package = \"...\", version = \"...\" }",
        ),
        (
            app("[trigger]\n[component.c]\nsource = \"c.wasm\"\nfiles = [\"assets/..\"]\n"),
            "spin.toml: component.c.files[0]: \"assets/..\" ends in a directory; \
             use { source = \"...\", destination = \"/...\" } or a glob ending in \"**/*\"",
        ),
        (
            app("[trigger]\n[component.c]\nsource = \"c.wasm\"\nfiles = [{ source = \"a\" }]\n"),
            "spin.toml: component.c.files[0].destination: missing",
        ),
        (
            app(
                "[trigger]\n[component.c]\nsource = \"c.wasm\"\nkey_value_stores = [\"Bad Store\"]\n",
            ),
            "spin.toml: component.c.key_value_stores[0]: \"Bad Store\" is not a kebab-case or snake_case label",
        ),
        (
            app(
                "[trigger]\n[component.c]\nsource = \"c.wasm\"\nvariables = { API_TOKEN = \"x\" }\n",
            ),
            "spin.toml: component.c.variables.API_TOKEN: \"API_TOKEN\" is not a valid variable name: \
             it must be lower case",
        ),
        (
            app("[trigger]\n[component.c]\nsource = \"c.wasm\"\nenvironment = { A = 1 }\n"),
            "spin.toml: component.c.environment.A: expected a string, found an integer",
        ),
        (
            // KebabId: `_` is the wrong delimiter.
            app("[trigger]\n[component.my_comp]\nsource = \"c.wasm\"\n"),
            "spin.toml: component.my_comp: \"my_comp\" is not a valid component id: \
             words are joined with '-', not '_'",
        ),
        (
            app("[[trigger.http]]\nroute = \"/\"\ncomponent = \"Bad1\"\n"),
            "spin.toml: trigger.http[0].component: \"Bad1\" is not a valid component id: \
             the word \"Bad1\" mixes lower and upper case",
        ),
        (
            app("[[trigger.http]]\nroute = \"/\"\ncomponent = 7\n"),
            "spin.toml: trigger.http[0].component: expected a component id or an inline \
             component table, found an integer",
        ),
        (
            app("[[trigger.http]]\nroute = \"/\"\ncomponent = { files = [] }\n"),
            "spin.toml: trigger.http[0].component.source: missing",
        ),
        (
            app("[trigger.http]\nroute = \"/\"\n"),
            "spin.toml: trigger.http: expected an array of tables: write [[trigger.http]]",
        ),
        (
            // AppManifest has no default for `trigger`.
            app(""),
            "spin.toml: trigger: missing",
        ),
        (
            "spin_manifest_version = 2\n[trigger]\n".to_owned(),
            "spin.toml: application: missing",
        ),
        (
            "spin_manifest_version = 2\n[application]\nversion = \"1\"\n[trigger]\n".to_owned(),
            "spin.toml: application.name: missing",
        ),
        (
            "spin_manifest_version = 2\n[application]\nname = 1\n[trigger]\n".to_owned(),
            "spin.toml: application.name: expected a string, found an integer",
        ),
        (
            // trigger-http/src/lib.rs: `[application.trigger.http]` has `base` only.
            app("[application.trigger.http]\nbase = \"/\"\nport = 80\n[trigger]\n"),
            "spin.toml: application.trigger.http.port: unknown field; expected one of: base",
        ),
        (
            app("[application.trigger.http]\nbase = \"/:tenant\"\n[trigger]\n"),
            "spin.toml: application.trigger.http.base: \"/:tenant\" is not a valid base path: \
             a base is a literal path, without parameters or wildcards",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(err(&text), expected, "for:\n{text}");
    }
}

#[test]
fn variable_errors() {
    // loader/src/local.rs locked_variable: `required` XOR `default`.
    assert_eq!(
        err(&app(
            "[variables]\nport = { required = true, default = \"80\" }\n[trigger]\n"
        )),
        "spin.toml: variables.port: has both `required = true` and a `default`: give one"
    );
    assert_eq!(
        err(&app("[variables]\nport = { secret = true }\n[trigger]\n")),
        "spin.toml: variables.port: needs `required = true` or a `default`"
    );
    assert_eq!(
        err(&app("[variables]\nport = { default = 80 }\n[trigger]\n")),
        "spin.toml: variables.port.default: expected a string, found an integer"
    );
    assert_eq!(
        err(&app(
            "[variables]\nport = { default = \"80\", type = \"int\" }\n[trigger]\n"
        )),
        "spin.toml: variables.port.type: unknown field; expected one of: \
         description, required, default, secret"
    );
    // LowerSnakeId.
    assert_eq!(
        err(&app(
            "[variables]\napi-key = { required = true }\n[trigger]\n"
        )),
        "spin.toml: variables.api-key: \"api-key\" is not a valid variable name: \
         words are joined with '_', not '-'"
    );
    assert_eq!(
        err(&app(
            "[variables]\n\"2fa\" = { required = true }\n[trigger]\n"
        )),
        "spin.toml: variables.2fa: \"2fa\" is not a valid variable name: \
         each word starts with an ASCII letter, not '2'"
    );
}

#[test]
fn what_this_shim_does_not_do_is_refused() {
    assert_eq!(
        err(&app(
            "[trigger]\n[component.c]\nsource = \"c.wasm\"\nallowed_http_hosts = [\"example.com\"]\n"
        )),
        "spin.toml: component.c.allowed_http_hosts: this deprecated field is not supported by \
         containerd-shim-spin: use `allowed_outbound_hosts` (e.g. \"https://example.com\")"
    );
    assert_eq!(
        err(&app(
            "[trigger]\n[component.c]\nsource = \"c.wasm\"\n[component.c.dependencies]\n\"a:b/c\" = \"1.0.0\"\n"
        )),
        "spin.toml: component.c.dependencies: component dependencies (composing components) \
         are not supported by containerd-shim-spin"
    );
    assert_eq!(
        err(&app(
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\ncomponents = { mw = \"c\" }\n[component.c]\nsource = \"c.wasm\"\n"
        )),
        "spin.toml: trigger.http[0].components: not supported by containerd-shim-spin for HTTP triggers"
    );
    // Empty ones, and what Spin ignores without a profile, are fine.
    ok(&app(r#"
[application.tool.x]
y = 1
[[trigger.http]]
route = "/"
component = "c"
[component.c]
source = "c.wasm"
allowed_http_hosts = []
dependencies = {}
[component.c.profile.debug]
source = "debug.wasm"
[component.c.tool.x]
y = 2
"#));
}

#[test]
fn http_base() {
    let m = ok(&app(r#"
[application.trigger.http]
base = "/shop"
[[trigger.http]]
route = "/cart/..."
component = "c"
[component.c]
source = "c.wasm"
"#));
    assert_eq!(m.http_base(), "/shop");
}

#[test]
fn not_toml() {
    let e = err("spin_manifest_version = \n");
    assert!(e.starts_with("spin.toml: not valid TOML: "), "{e}");
}

#[test]
fn error_parts() {
    let e = parse(
        &app("[[trigger.http]]\nroute = \"/\"\ncomponent = \"foo\"\n"),
        Path::new("/app/spin.toml"),
    )
    .unwrap_err();
    assert_eq!(e.file(), Path::new("/app/spin.toml"));
    assert_eq!(e.field(), Some("trigger.http[0].component"));
    assert_eq!(e.message(), "unknown component \"foo\"");
    assert_eq!(
        e.to_string(),
        "/app/spin.toml: trigger.http[0].component: unknown component \"foo\""
    );
}

#[test]
fn load_reads_the_file() {
    let dir = std::env::temp_dir().join(format!("shim-spin-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spin.toml");
    std::fs::write(&file, SEED).unwrap();
    let m = load(&file).unwrap();
    assert_eq!(m.file(), file);
    assert_eq!(m.app_dir(), dir);
    std::fs::remove_dir_all(&dir).unwrap();

    let e = load(&file).unwrap_err();
    assert_eq!(e.field(), None);
    assert!(e.message().starts_with("cannot read it: "), "{e}");
}

#[test]
fn manifest_routes_build_a_router() {
    // The pieces fit: the manifest's HTTP triggers and base make a router.
    let m = ok(&app(r#"
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.http]]
route = "/api/:version/..."
component = { source = "api.wasm" }
[[trigger.http]]
route = { private = true }
component = "web"
[component.web]
source = "web.wasm"
"#));
    let router = crate::routes::Router::new(
        m.http_base(),
        m.http_triggers()
            .iter()
            .filter_map(|t| Some((t.route().path()?, t.component()?))),
    )
    .unwrap();
    let hit = router.route("/api/v2/users").unwrap();
    assert_eq!(hit.component_id(), "http-trigger1-component");
    assert_eq!(hit.param("version"), Some("v2"));
    assert_eq!(hit.path_info(), "/users");
    assert_eq!(router.route("/index.html").unwrap().component_id(), "web");
}
