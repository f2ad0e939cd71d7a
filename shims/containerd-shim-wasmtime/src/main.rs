//! `containerd-shim-wasmtime-v1`: the shared shim with the wasmtime engine.

mod component;
mod engine;
mod http;
mod p1;

fn main() {
    containerd_shim_wasm::run::<engine::WasmtimeEngine>(engine::WASMTIME_VERSION);
}
