//! CRI conformance suite: talks CRI v1 to the private containerd's CRI plugin exactly as the
//! kubelet does, and checks that pods with Wasm containers and native sidecars work on the
//! shims (runtime handlers `wasmtime`, `wamr` and, where libwasmedge is, `wasmedge`; see
//! scripts/containerd.sh).
//!
//! The tests in `tests/` are `#[ignore]`d like shim-conformance's: `make test` runs them
//! against the private containerd. By hand:
//!
//! ```text
//! make images && scripts/containerd.sh start && eval "$(scripts/containerd.sh env)"
//! cargo test --release -p cri-conformance -- --include-ignored
//! ```

pub mod cases;
pub mod client;
pub mod images;
pub mod leftovers;
pub mod logs;
pub mod network;
pub mod pod;
pub mod streaming;

/// The runtime handlers (RuntimeClass handlers) of the private containerd that run pods on
/// our shims, named as their engines.
pub const HANDLERS: [&str; 3] = ["wasmtime", "wamr", "wasmedge"];

/// Whether `handler`'s shim is missing (the WasmEdge shim is built only where libwasmedge
/// is): then a test on it reports the skip with the reason on stderr and checks nothing, and
/// `docs/engines.md` shows the engine as not built.
pub fn skipped(handler: &str) -> bool {
    let Some(engine) = shim_conformance::engines::ENGINES
        .iter()
        .find(|engine| engine.name == handler)
    else {
        return false;
    };
    match engine.locate() {
        Ok(_) => false,
        Err(reason) => {
            shim_conformance::engines::report_uncaptured(&format!(
                "CRI handler {handler} skipped: {reason:#}"
            ));
            true
        }
    }
}
