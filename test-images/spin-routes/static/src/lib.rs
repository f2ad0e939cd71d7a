//! `spin-routes-static`: the `static` component of the `spin-routes` Spin app, on the route
//! `/static/...` (spin-sdk 5, `#[http_component]`, built for `wasm32-wasip2`).
//!
//! Every request is answered `200 text/plain` with the line `static: path-info=<spin-path-info>`
//! (the part of the path the trailing wildcard matched, as the host put it in the
//! `spin-path-info` header: `/a/b.txt` for `/static/a/b.txt`), then every `spin-*` request
//! header it received as a `name=value` line, sorted, each line ending in `\n`.
//!
//! The app's image layout is told in `../spin.toml`: `/spin.toml` at the image root and this
//! component beside it as `/static.wasm`.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

#[path = "../../spin_headers.rs"]
mod spin_headers;

use spin_sdk::http::{Request, Response};

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
fn handle_static(req: Request) -> Response {
    let path_info = req
        .header("spin-path-info")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let body = format!(
        "static: path-info={path_info}\n{}",
        spin_headers::spin_header_lines(&req)
    );
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
