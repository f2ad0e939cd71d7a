//! `http-hello`: a `wasi:http/proxy` component for the shim's HTTP tests.
//!
//! Every request is answered `200 text/plain` with the lines
//! `method=M`, `path=P`, `x-test=<the request's x-test header>`, `GREETING=<env GREETING>` and
//! `counter=N`, plus the headers `x-hello: http-hello` and `x-counter: N`, where N counts the
//! requests this instance has seen (1 when every request gets a fresh instance). Special paths:
//!
//! * `/trap` traps (a panic, which aborts the instance) before answering.
//! * `/sleep?ms=N` waits N milliseconds before answering (for drain tests).

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};

use wasip2::clocks::monotonic_clock;
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

// The exports only exist in the component: a host build of the workspace (`cargo build
// --workspace`) would fail to link them into a shared library, as their names are not C symbols.
#[cfg(target_arch = "wasm32")]
wasip2::http::proxy::export!(HttpHello);

/// Requests seen by this instance: a leak between requests would show as more than 1.
static REQUESTS: AtomicU32 = AtomicU32::new(0);

struct HttpHello;

impl Guest for HttpHello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let count = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
        let path_with_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));
        match path {
            "/trap" => panic!("http-hello: trap requested"),
            "/sleep" => {
                let ms: u64 = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("ms="))
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(1000);
                monotonic_clock::subscribe_duration(ms * 1_000_000).block();
            }
            _ => {}
        }
        let x_test = request
            .headers()
            .get("x-test")
            .first()
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default();
        let body = format!(
            "method={}\npath={path}\nx-test={x_test}\nGREETING={}\ncounter={count}\n",
            method_name(&request.method()),
            std::env::var("GREETING").unwrap_or_default(),
        );
        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"text/plain".to_vec()),
            ("x-hello".to_string(), b"http-hello".to_vec()),
            ("x-counter".to_string(), count.to_string().into_bytes()),
        ])
        .expect("valid response headers");
        let response = OutgoingResponse::new(headers);
        let outgoing = response.body().expect("the response body");
        ResponseOutparam::set(response_out, Ok(response));
        let mut stream = outgoing.write().expect("the response body stream");
        stream.write_all(body.as_bytes()).expect("write the body");
        std::io::Write::flush(&mut stream).expect("flush the body");
        drop(stream);
        OutgoingBody::finish(outgoing, None).expect("finish the body");
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
