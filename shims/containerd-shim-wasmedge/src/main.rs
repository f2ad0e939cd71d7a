//! `containerd-shim-wasmedge-v1`: the shared shim with the WasmEdge engine.

mod engine;
mod epoll_restart;

fn main() {
    // The version of the libwasmedge the dynamic linker loaded, which may differ from the
    // one the shim was built against.
    containerd_shim_wasm::run::<engine::WasmEdgeEngine>(&wasmedge_sys::utils::version_string());
}
