//! CRI conformance suite: talks CRI v1 to the private containerd's CRI plugin exactly as the
//! kubelet does, and checks that pods with Wasm containers and native sidecars work on the
//! shims (runtime handlers `wasmtime` and `wamr`, see scripts/containerd.sh).
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
/// our shims.
pub const HANDLERS: [&str; 2] = ["wasmtime", "wamr"];
