//! A native image through a Wasm shim: args[0] is an ELF executable, so the shim runs it as
//! an ordinary Linux container (a pod's pause and sidecar containers share its shim).

use shim_conformance::target::{check_targets, native_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn native_image_runs_on_every_wasm_shim() {
    let hybrid: Vec<_> = native_targets()
        .into_iter()
        .filter(|target| target.runtime.runs_wasm)
        .collect();
    check_targets(&hybrid, |target, test| {
        target.run(test, &["echo", "hi"])?.expect(0, "hi\n")
    });
}
