//! `spin-kv-p3`: a Spin HTTP component of the newest SDK shape (spin-sdk 7, `#[http_service]`,
//! a `wasi:http/handler@0.3.0` export) using Spin's async interfaces,
//! `spin:key-value/key-value@3.0.0` and `spin:variables/variables@3.0.0`; built for
//! `wasm32-wasip2`.
//!
//! - `GET /keys`: `keys=<the keys of the store default, comma-separated>\n` (read through the
//!   interface's stream).
//! - `GET /vars`: `message=<the component variable message>\n`.
//! - any other `GET`: adds 1 to the key `count` of the store `default` and answers `count=N\n`;
//!   other methods answer the count without adding.
//!
//! A failure of the host answers `500` with `error: <why>\n`. Answers are `text/plain`.
//! Image layout: `/spin.toml` (this crate's) and the component as `/kv-p3.wasm`.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use spin_sdk::http::{Method, Request, StatusCode};
use spin_sdk::key_value::Store;

const KEY: &str = "count";

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting the handler, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_service)]
async fn handle_kv_p3(req: Request) -> (StatusCode, String) {
    let answer = match req.uri().path() {
        "/keys" => keys().await,
        "/vars" => spin_sdk::variables::get("message")
            .await
            .map(|message| format!("message={message}\n"))
            .map_err(|e| format!("variable message: {e}")),
        _ => count(req.method() == Method::GET).await,
    };
    match answer {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("error: {e}\n")),
    }
}

async fn keys() -> Result<String, String> {
    let store = Store::open_default()
        .await
        .map_err(|e| format!("opening the store default: {e}"))?;
    let keys = store
        .get_keys()
        .await
        .collect()
        .await
        .map_err(|e| format!("listing the keys: {e}"))?;
    Ok(format!("keys={}\n", keys.join(",")))
}

async fn count(increment: bool) -> Result<String, String> {
    let store = Store::open_default()
        .await
        .map_err(|e| format!("opening the store default: {e}"))?;
    let stored = store
        .get(KEY)
        .await
        .map_err(|e| format!("getting the key {KEY}: {e}"))?;
    let mut n: u64 = match stored {
        None => 0,
        Some(bytes) => String::from_utf8_lossy(&bytes)
            .parse()
            .map_err(|e| format!("the key {KEY} holds no number: {e}"))?,
    };
    if increment {
        n += 1;
        store
            .set(KEY, n.to_string())
            .await
            .map_err(|e| format!("setting the key {KEY}: {e}"))?;
    }
    Ok(format!("count={n}\n"))
}
