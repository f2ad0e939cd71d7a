//! `spin-routes-users`: the `users` component of the `spin-routes` Spin app, on the route
//! `/users/:id` (spin-sdk 5, `#[http_component]`, built for `wasm32-wasip2`).
//!
//! Every request is answered `200 text/plain` with the line `users: id=<spin-path-match-id>`
//! (the value the host put in the `spin-path-match-id` header for the route's `:id`, empty when
//! there is none), then every `spin-*` request header it received as a `name=value` line, sorted
//! (e.g. `spin-component-route=/users/:id`, `spin-path-match-id=42`), each line ending in `\n`.
//!
//! The app's image layout is told in `../spin.toml`: `/spin.toml` at the image root and this
//! component beside it as `/users.wasm`.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[path = "../../spin_headers.rs"]
mod spin_headers;

use spin_sdk::http::{Request, Response};

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
fn handle_users(req: Request) -> Response {
    let id = req
        .header("spin-path-match-id")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let body = format!("users: id={id}\n{}", spin_headers::spin_header_lines(&req));
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
