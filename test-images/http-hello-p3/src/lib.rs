//! `http-hello-p3`: a `wasi:http/service@0.3` component answering as `http-hello` (its WASI
//! 0.2 twin) does, so that the same checks run against both.
//!
//! Every request is answered `200 text/plain` with the lines `method=M`, `path=P`,
//! `x-test=<the request's x-test header>`, `GREETING=<env GREETING>`, `counter=N` and
//! `wasi=0.3`, plus the headers `x-hello: http-hello-p3` and `x-counter: N`, where N counts the
//! requests this instance has seen (1 when every request gets a fresh instance, more when the
//! server reuses instances). Special paths:
//!
//! * `/trap` traps (a panic, which aborts the instance) before answering.
//! * `/sleep?ms=N` waits N milliseconds (WASI 0.3's async `wait-for`) before answering.
//! * `/fetch?to=HOST:PORT/PATH` sends `GET http://HOST:PORT/PATH` through
//!   `wasi:http/client@0.3` and answers `200` with `upstream=<its status>` and its body, or
//!   `502` with `fetch failed: <error code>` when the request fails (denied, unreachable).

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::sync::atomic::{AtomicU32, Ordering};

use wasip3::clocks::monotonic_clock;
use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response, Scheme, StatusCode};
use wasip3::{wit_bindgen, wit_future, wit_stream};

#[cfg(target_arch = "wasm32")]
wasip3::http::service::export!(HttpHelloP3);

/// Requests seen by this instance: reuse shows as more than 1.
static REQUESTS: AtomicU32 = AtomicU32::new(0);

struct HttpHelloP3;

impl wasip3::exports::http::handler::Guest for HttpHelloP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let count = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        let path_with_query = request.get_path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));
        match path {
            "/trap" => panic!("http-hello-p3: trap requested"),
            "/fetch" => {
                let (status, body) = fetch(query).await;
                return Ok(text_response(status, count, body));
            }
            "/sleep" => {
                let ms: u64 = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("ms="))
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(1000);
                monotonic_clock::wait_for(ms * 1_000_000).await;
            }
            _ => {}
        }
        let x_test = request
            .get_headers()
            .get("x-test")
            .first()
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        let body = format!(
            "method={}\npath={path}\nx-test={x_test}\nGREETING={}\ncounter={count}\nwasi=0.3\n",
            method_name(&request.get_method()),
            std::env::var("GREETING").unwrap_or_default(),
        );
        Ok(text_response(200, count, body))
    }
}

/// A `text/plain` response with `body`, streamed after the response head is handed over as a
/// streaming server would, and the headers `x-hello` and `x-counter: count`.
fn text_response(status: StatusCode, count: u32, body: String) -> Response {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"text/plain".to_vec()),
        ("x-hello".to_string(), b"http-hello-p3".to_vec()),
        ("x-counter".to_string(), count.to_string().into_bytes()),
    ])
    .expect("valid response headers");
    let (mut body_tx, body_rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    let (response, _sent) = Response::new(headers, Some(body_rx), trailers_rx);
    response
        .set_status_code(status)
        .expect("a valid status code");
    wit_bindgen::spawn_local(async move {
        let remaining = body_tx.write_all(body.into_bytes()).await;
        assert!(remaining.is_empty(), "the client went away");
        drop(body_tx);
        drop(trailers_tx);
    });
    response
}

/// `GET http://<to>` (the query's `to=HOST:PORT/PATH`) through `wasi:http/client`: the status
/// to answer with and the body.
async fn fetch(query: &str) -> (StatusCode, String) {
    let to = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("to="))
        .unwrap_or_default();
    let (authority, path) = match to.find('/') {
        Some(slash) => to.split_at(slash),
        None => (to, "/"),
    };
    // Dropping a future's writer resolves it with its default: no trailers, and (below, once
    // the body is read) no error in handling the response.
    let (no_trailers, trailers_rx) = wit_future::new(|| Ok(None));
    drop(no_trailers);
    let (request, _sent) = Request::new(Fields::new(), None, trailers_rx, None);
    let valid = request.set_scheme(Some(&Scheme::Http)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(path)).is_ok();
    if !valid {
        return (400, format!("fetch: invalid target {to:?}\n"));
    }
    match wasip3::http::client::send(request).await {
        Ok(response) => {
            let status = response.get_status_code();
            let (done, done_rx) = wit_future::new(|| Ok(()));
            let (contents, _trailers) = Response::consume_body(response, done_rx);
            let body = contents.collect().await;
            drop(done);
            (
                200,
                format!("upstream={status}\n{}", String::from_utf8_lossy(&body)),
            )
        }
        Err(code) => (502, format!("fetch failed: {code:?}\n")),
    }
}

fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}
