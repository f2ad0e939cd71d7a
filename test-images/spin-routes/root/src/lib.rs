//! `spin-routes-root`: the `root` component of the `spin-routes` Spin app, on the exact route
//! `/` (spin-sdk 5, `#[http_component]`, built for `wasm32-wasip2`).
//!
//! Every request is answered `200 text/plain` with the body `root\n` (one line, as the other
//! components write theirs).
//!
//! The app's image layout is told in `../spin.toml`: `/spin.toml` at the image root and this
//! component beside it as `/root.wasm`.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use spin_sdk::http::{Request, Response};

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
fn handle_root(_req: Request) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("root\n")
        .build()
}
