//! `spin-hello`: a Spin HTTP component written as Spin 3's `spin new -t http-rust` template
//! writes one (spin-sdk 3, `#[http_component]`, built for `wasm32-wasip1`, so a core module
//! that the host must turn into a component), with the answer the shim's Spin tests look for.
//!
//! Every request is answered `200` with `content-type: text/plain` and the body
//! `Hello from Wasm on Kubernetes!`. Like the template, it first prints
//! `Handling request to Some("<spin-full-url header>")` to stdout.
//!
//! Image layout: `/spin.toml` (this crate's `spin.toml`) at the image root and the module
//! beside it as `/hello.wasm` (`target/wasm32-wasip1/release/spin_hello.wasm`); the manifest
//! routes `/...` to it.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use spin_sdk::http::{IntoResponse, Request, Response};

/// The template's handler, answering the shim's greeting.
// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
fn handle_spin_hello(req: Request) -> anyhow::Result<impl IntoResponse> {
    println!("Handling request to {:?}", req.header("spin-full-url"));
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("Hello from Wasm on Kubernetes!")
        .build())
}
