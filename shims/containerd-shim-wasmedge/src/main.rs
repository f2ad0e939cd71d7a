//! `containerd-shim-wasmedge-v1`: the shared shim with the WasmEdge engine.

mod engine;

fn main() {
    containerd_shim_wasm::run::<engine::WasmEdgeEngine>(engine::WASMEDGE_SDK_VERSION);
}
