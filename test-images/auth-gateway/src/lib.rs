//! `auth-gateway`: the edge pattern of checking a token before proxying, as a `wasi:http/proxy`
//! component.
//!
//! * No `Authorization: Bearer <token>` header: `401`.
//! * A token that is not an HS256 JWT signed with the secret in env `JWT_SECRET`, or whose
//!   `exp` claim (seconds since the epoch) has passed: `403`.
//! * Otherwise the request (method, path and query, headers, body) goes to env `UPSTREAM_URL`
//!   (`http://host:port[/prefix]`, the request's path appended) with the header
//!   `x-auth-subject: <sub claim>`, and the upstream's status, headers and body come back.
//!   When the upstream cannot be reached (or outgoing HTTP is denied): `502`.

// On the host (a `cargo build --workspace`) the handler is not exported, so nothing uses it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod jwt;
mod proxy;

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

// The exports only exist in the component: a host build of the workspace (`cargo build
// --workspace`) would fail to link them into a shared library, as their names are not C symbols.
#[cfg(target_arch = "wasm32")]
wasip2::http::proxy::export!(AuthGateway);

struct AuthGateway;

impl Guest for AuthGateway {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let secret = std::env::var("JWT_SECRET").unwrap_or_default();
        let authorization = request
            .headers()
            .get("authorization")
            .first()
            .map(|value| String::from_utf8_lossy(value).into_owned());
        let Some(token) = authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return answer(response_out, 401, "missing bearer token\n");
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let claims = match jwt::verify(token.trim(), secret.as_bytes(), now) {
            Ok(claims) => claims,
            Err(why) => return answer(response_out, 403, &format!("forbidden: {why}\n")),
        };
        let Ok(upstream) = std::env::var("UPSTREAM_URL") else {
            return answer(response_out, 500, "UPSTREAM_URL is not set\n");
        };
        match proxy::forward(request, &upstream, &claims.subject) {
            Ok(response) => ResponseOutparam::set(response_out, Ok(response)),
            Err(why) => answer(response_out, 502, &format!("upstream {upstream}: {why}\n")),
        }
    }
}

/// A plain-text answer from the gateway itself.
fn answer(response_out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())])
        .expect("valid response headers");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("a valid status code");
    let body = response.body().expect("the response body");
    ResponseOutparam::set(response_out, Ok(response));
    let mut stream = body.write().expect("the response body stream");
    stream.write_all(text.as_bytes()).expect("write the body");
    std::io::Write::flush(&mut stream).expect("flush the body");
    drop(stream);
    OutgoingBody::finish(body, None).expect("finish the body");
}
