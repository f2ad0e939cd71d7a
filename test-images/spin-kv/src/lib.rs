//! `spin-kv`: a Spin HTTP component that counts requests in Spin's key-value store (spin-sdk 5,
//! `fermyon:spin/key-value@2.0.0`, built for `wasm32-wasip2`).
//!
//! It opens the store `default` and reads the key `count` (a decimal number as UTF-8; 0 when the
//! key is missing). A `GET` stores count + 1 and answers it; any other method answers the count
//! as it is. The answer is `200 text/plain` with the body `count=N\n`. A store that cannot be
//! opened, read or written, or a value that is no number, answers `500 text/plain` with
//! `error: <what failed>\n`.
//!
//! Image layout: `/spin.toml` (this crate's `spin.toml`, which grants the component the store
//! `default`) at the image root and the component beside it as `/kv.wasm`
//! (`target/wasm32-wasip2/release/spin_kv.wasm`); the manifest routes `/...` to it.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::key_value::Store;

/// The key that holds the count.
const KEY: &str = "count";

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
fn handle_kv(req: Request) -> Response {
    let (status, body) = match count(*req.method() == Method::Get) {
        Ok(n) => (200, format!("count={n}\n")),
        Err(e) => (500, format!("error: {e}\n")),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}

/// The count in the store `default`, first incremented there when `increment`.
fn count(increment: bool) -> Result<u64, String> {
    let store = Store::open_default().map_err(|e| format!("opening the store default: {e}"))?;
    let stored = store
        .get(KEY)
        .map_err(|e| format!("getting the key {KEY}: {e}"))?;
    let mut n = match stored {
        None => 0,
        Some(bytes) => String::from_utf8_lossy(&bytes)
            .parse::<u64>()
            .map_err(|e| format!("the key {KEY} holds no number: {e}"))?,
    };
    if increment {
        n += 1;
        store
            .set(KEY, n.to_string().as_bytes())
            .map_err(|e| format!("setting the key {KEY}: {e}"))?;
    }
    Ok(n)
}
