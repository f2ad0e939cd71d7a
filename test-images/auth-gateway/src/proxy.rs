//! Forwarding a request to the upstream with `wasi:http/outgoing-handler`.

use std::io::{Read as _, Write as _};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, Scheme,
};

/// Headers that describe one hop's connection, not the message: never copied across.
const HOP_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Sends `request` to `upstream` (`http[s]://authority[/prefix]`) with `x-auth-subject`, and
/// returns the upstream's response as ours.
pub fn forward(
    request: IncomingRequest,
    upstream: &str,
    subject: &str,
) -> Result<OutgoingResponse, String> {
    let (scheme, rest) = upstream
        .split_once("://")
        .ok_or("UPSTREAM_URL has no scheme")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported scheme {other}")),
    };
    let (authority, prefix) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
        None => (rest, ""),
    };

    let mut headers = copy_headers(&request.headers().entries());
    headers.retain(|(name, _)| name != "authorization");
    headers.push(("x-auth-subject".to_string(), subject.as_bytes().to_vec()));
    let outgoing = OutgoingRequest::new(Fields::from_list(&headers).map_err(|e| e.to_string())?);
    outgoing
        .set_method(&request.method())
        .map_err(|()| "method")?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| "scheme")?;
    outgoing
        .set_authority(Some(authority))
        .map_err(|()| "authority")?;
    let path = format!(
        "{prefix}{}",
        request.path_with_query().unwrap_or_else(|| "/".into())
    );
    outgoing
        .set_path_with_query(Some(&path))
        .map_err(|()| "path")?;

    let body = read_body(request.consume().map_err(|()| "request body")?)?;
    let outgoing_body = outgoing.body().map_err(|()| "outgoing body")?;
    let pending = outgoing_handler::handle(outgoing, None).map_err(|e| e.to_string())?;
    write_body(outgoing_body, &body)?;

    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|()| "response taken twice")?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let headers = copy_headers(&response.headers().entries());
    let body = read_body(response.consume().map_err(|()| "response body")?)?;

    let ours = OutgoingResponse::new(Fields::from_list(&headers).map_err(|e| e.to_string())?);
    ours.set_status_code(status).map_err(|()| "status")?;
    write_body(ours.body().map_err(|()| "our body")?, &body)?;
    Ok(ours)
}

fn copy_headers(entries: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    entries
        .iter()
        .filter(|(name, _)| !HOP_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .cloned()
        .collect()
}

fn read_body(body: IncomingBody) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let mut stream = body.stream().map_err(|()| "body stream")?;
        stream
            .read_to_end(&mut bytes)
            .map_err(|e| format!("read body: {e}"))?;
    }
    IncomingBody::finish(body);
    Ok(bytes)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    {
        let mut stream = body.write().map_err(|()| "body stream")?;
        stream
            .write_all(bytes)
            .and_then(|()| std::io::Write::flush(&mut stream))
            .map_err(|e| format!("write body: {e}"))?;
    }
    OutgoingBody::finish(body, None).map_err(|e| e.to_string())
}
