//! The runtimes under test are there: a suite that ran no engine must not pass.

use shim_conformance::engines::{ENGINES, RUNC, available_engines};
use shim_conformance::environment::containerd;

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn at_least_one_wasm_engine_is_built() {
    containerd();
    if available_engines().is_empty() {
        let reasons: Vec<String> = ENGINES
            .iter()
            .filter_map(|engine| engine.locate().err())
            .map(|e| format!("{e:#}"))
            .collect();
        panic!(
            "no Wasm shim can be started, so no Wasm test ran:\n{}",
            reasons.join("\n")
        );
    }
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn runc_reference_is_available() {
    if let Err(e) = RUNC.locate() {
        panic!("the reference runtime is missing: {e:#}");
    }
}
