//! Spin builds components as `wasm32-wasip1` core modules that carry their component type
//! (wit-bindgen's `component-type` custom sections) and makes them components when it loads
//! them. So does this shim, with wit-component and the WASI preview 1 reactor adapter of the
//! wasmtime release it runs on. The result is cached with the compiled code (the precompile
//! key names the adapter), so a module is componentized once per node.

use std::borrow::Cow;

use anyhow::Context;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};

/// Which adapter componentized modules get, for the precompile key: a new adapter makes new
/// components.
pub const ADAPTER: &str = "wasi-preview1-reactor-48.0.8";

/// `bytes` as a component: a core module with a component type is componentized; anything
/// else (a component, a plain WASI preview 1 module) is returned as it is.
pub fn if_needed(bytes: &[u8]) -> anyhow::Result<Cow<'_, [u8]>> {
    if !has_component_type(bytes) {
        return Ok(Cow::Borrowed(bytes));
    }
    let component = wit_component::ComponentEncoder::default()
        .module(bytes)
        .context("read the module's component type (wit-bindgen's custom sections)")?
        .validate(true)
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )
        .context("load the WASI preview 1 adapter")?
        .encode()
        .context("make the wasm32-wasip1 module a component (as Spin does)")?;
    Ok(Cow::Owned(component))
}

/// Whether `bytes` are a core module carrying a `component-type` custom section.
fn has_component_type(bytes: &[u8]) -> bool {
    if Parser::is_component(bytes) || !Parser::is_core_wasm(bytes) {
        return false;
    }
    Parser::new(0).parse_all(bytes).any(|payload| {
        matches!(payload, Ok(Payload::CustomSection(section))
            if section.name().starts_with("component-type"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_modules_and_components_pass_through() {
        let module = b"\0asm\x01\0\0\0";
        assert!(matches!(if_needed(module).unwrap(), Cow::Borrowed(_)));
        let component = b"\0asm\x0d\0\x01\0";
        assert!(matches!(if_needed(component).unwrap(), Cow::Borrowed(_)));
    }
}
