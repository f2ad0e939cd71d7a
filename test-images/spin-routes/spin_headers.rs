//! The `spin-*` request headers as `name=value` lines, shared by the spin-routes components.

use spin_sdk::http::Request;

/// Every request header whose name starts with `spin-` (any case), one `name=value` line each
/// (name lowercased, value lossily as UTF-8), sorted, each line ending in `\n`.
pub fn spin_header_lines(req: &Request) -> String {
    let mut lines: Vec<String> = req
        .headers()
        .filter_map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            name.starts_with("spin-").then(|| {
                let value = String::from_utf8_lossy(value.as_bytes());
                format!("{name}={value}\n")
            })
        })
        .collect();
    lines.sort();
    lines.concat()
}
