//! `containerd-shim-wasmtime-v1`: the shared shim with the wasmtime engine.

use containerd_shim_wasmtime::engine::{WASMTIME_VERSION, WasmtimeEngine};

fn main() {
    containerd_shim_wasm::run::<WasmtimeEngine>(WASMTIME_VERSION);
}
