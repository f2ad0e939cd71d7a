//! `spin-outbound`: a Spin HTTP component that reaches out as far as its manifest lets it
//! (spin-sdk 5, built for `wasm32-wasip2`), and can be slow or trap on request.
//!
//! - `GET /fetch?to=http://HOST:PORT/PATH`: sends `GET` to that URL with Spin's outgoing HTTP
//!   (`wasi:http/outgoing-handler`); answers `200` with `status=<status>\n<body>` of the
//!   answer, or `502` with `error: <why>\n` when the request could not be sent (a host not in
//!   `allowed_outbound_hosts` is refused by the host).
//! - `GET /connect?to=IP:PORT`: opens a TCP connection (`wasi:sockets`, through Rust's
//!   `std::net`), sends `GET / HTTP/1.0` and answers `200` with `connected: <first line of the
//!   reply>\n`, or `502` with `error: <why>\n`.
//! - `GET /file?path=/assets/hello.txt`: answers `200` with the file's content, or `404` with
//!   `error: <why>\n` (the component sees only its manifest's `files`).
//! - `GET /slow?ms=N`: sleeps N milliseconds, then answers `200` with `slept N ms\n`.
//! - `GET /trap`: panics, which traps the instance (the host answers `500`).
//! - anything else: `404`.
//!
//! Every answer is `text/plain`. Image layout: `/spin.toml` (this crate's), the component as
//! `/outbound.wasm`, and this crate's `assets/` as `/assets`.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::io::{BufRead, BufReader, Write};

use spin_sdk::http::{Request, Response};

// The export only exists in the Wasm build: a host build of the workspace would fail to link a
// shared library exporting `wasi:http/incoming-handler@0.2.0#handle`, which is no C symbol.
#[cfg_attr(target_arch = "wasm32", spin_sdk::http_component)]
async fn handle_outbound(req: Request) -> Response {
    let target = query_value(req.query(), "to")
        .or_else(|| query_value(req.query(), "path"))
        .unwrap_or_default();
    let (status, body) = match req.path() {
        "/fetch" => match fetch(&target).await {
            Ok(answer) => (200, answer),
            Err(e) => (502, format!("error: {e}\n")),
        },
        "/connect" => match connect(&target) {
            Ok(line) => (200, format!("connected: {line}\n")),
            Err(e) => (502, format!("error: {e}\n")),
        },
        "/file" => match std::fs::read_to_string(&target) {
            Ok(content) => (200, content),
            Err(e) => (404, format!("error: {target}: {e}\n")),
        },
        "/slow" => {
            let ms = query_value(req.query(), "ms")
                .and_then(|ms| ms.parse().ok())
                .unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            (200, format!("slept {ms} ms\n"))
        }
        "/trap" => panic!("trap requested"),
        other => (404, format!("no such path {other}\n")),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}

/// The value of `name` in a query string (no percent-decoding: the tests send plain values).
fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

async fn fetch(url: &str) -> Result<String, String> {
    let response: Response = spin_sdk::http::send(Request::get(url))
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok(format!(
        "status={}\n{}",
        response.status(),
        String::from_utf8_lossy(response.body())
    ))
}

fn connect(addr: &str) -> Result<String, String> {
    let mut stream =
        std::net::TcpStream::connect(addr).map_err(|e| format!("connect to {addr}: {e}"))?;
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write to {addr}: {e}"))?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    Ok(line.trim_end().to_string())
}
