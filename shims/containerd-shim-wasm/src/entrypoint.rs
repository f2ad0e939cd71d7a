//! The container's entry point, `process.args[0]`: a path, optionally `path#func`.

/// The export called when the entry point names none.
pub const DEFAULT_ENTRY: &str = "_start";

/// `args[0]` split into the module path and the exported function to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint {
    pub path: String,
    pub func: String,
}

impl Entrypoint {
    /// Splits `path#func`. Only the last `#` counts, so a path may itself contain one; an
    /// empty function name (`path#`) means the default.
    pub fn parse(arg0: &str) -> Self {
        match arg0.rsplit_once('#') {
            Some((path, func)) if !path.is_empty() => Self {
                path: path.to_string(),
                func: if func.is_empty() { DEFAULT_ENTRY } else { func }.to_string(),
            },
            _ => Self {
                path: arg0.to_string(),
                func: DEFAULT_ENTRY.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_functions() {
        let cases = [
            ("/app.wasm", "/app.wasm", "_start"),
            ("app.wasm", "app.wasm", "_start"),
            ("/app.wasm#greet", "/app.wasm", "greet"),
            ("app.wasm#greet", "app.wasm", "greet"),
            ("/app.wasm#", "/app.wasm", "_start"),
            ("/dir#1/app.wasm#run", "/dir#1/app.wasm", "run"),
            ("#greet", "#greet", "_start"),
            ("", "", "_start"),
        ];
        for (arg0, path, func) in cases {
            let entry = Entrypoint::parse(arg0);
            assert_eq!(entry.path, path, "path of {arg0:?}");
            assert_eq!(entry.func, func, "func of {arg0:?}");
        }
    }
}
