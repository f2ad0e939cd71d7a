//! Builds the real module (`--release --target wasm32-wasip1`, into this test's own target dir)
//! and checks what the shim relies on: `_start` and `greet` are exported functions and every
//! import comes from WASI preview 1.

use std::path::Path;
use std::process::Command;

use wasmparser::{ExternalKind, Parser, Payload};

fn build_module() -> Vec<u8> {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi-demo-app");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--manifest-path",
        ])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(
        status.success(),
        "building wasi-demo-app for wasm32-wasip1 failed"
    );
    let module = target_dir.join("wasm32-wasip1/release/wasi-demo-app.wasm");
    std::fs::read(&module).unwrap_or_else(|e| panic!("cannot read {}: {e}", module.display()))
}

#[test]
fn exports_start_and_greet_and_imports_only_wasi_preview1() {
    let module = build_module();
    let mut function_exports = Vec::new();
    let mut import_modules = Vec::new();
    for payload in Parser::new(0).parse_all(&module) {
        match payload.expect("the module parses") {
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.unwrap();
                    if export.kind == ExternalKind::Func {
                        function_exports.push(export.name.to_owned());
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    import_modules.push(import.unwrap().module.to_owned());
                }
            }
            _ => {}
        }
    }
    for name in ["_start", "greet"] {
        assert!(
            function_exports.iter().any(|export| export == name),
            "{name} is not exported; function exports: {function_exports:?}"
        );
    }
    import_modules.sort();
    import_modules.dedup();
    assert_eq!(import_modules, ["wasi_snapshot_preview1"]);
}
