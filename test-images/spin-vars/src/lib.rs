//! `spin-vars`: a Spin HTTP component that answers its component variable `message` (spin-sdk
//! 5, `fermyon:spin/variables@2.0.0`, built for `wasm32-wasip2`).
//!
//! The manifest (this crate's `spin.toml`) declares the application variables `greeting`
//! (default `Hello`) and `name` (required, no default), and gives the component the variable
//! `message = "{{ greeting }}, {{ name }}"`. Every request is answered `200 text/plain` with the
//! body `message=<message>\n`, e.g. `message=Hello, Kubernetes\n` when `name` is set to
//! `Kubernetes`; when the host cannot give the variable (e.g. `name` was never set), the answer
//! is `500 text/plain` with `error: <the host's error>\n`. `/config` reads the same variable
//! through `wasi:config/store@0.2.0-draft-2024-09-27`: `config message=<message>\n` (`404` when
//! the host has none).
//!
//! Image layout: `/spin.toml` at the image root and the component beside it as `/vars.wasm`
//! (`target/wasm32-wasip2/release/spin_vars.wasm`); the manifest routes `/...` to it.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use spin_sdk::http::{Request, Response};

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
fn handle_vars(req: Request) -> Response {
    let (status, body) = if req.path() == "/config" {
        // The same variable through wasi:config/store, as Spin's other SDKs read it.
        match spin_sdk::wit::wasi::config::store::get("message") {
            Ok(Some(message)) => (200, format!("config message={message}\n")),
            Ok(None) => (404, "config message: none\n".to_string()),
            Err(e) => (500, format!("error: {e:?}\n")),
        }
    } else {
        match spin_sdk::variables::get("message") {
            Ok(message) => (200, format!("message={message}\n")),
            Err(e) => (500, format!("error: {e}\n")),
        }
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
