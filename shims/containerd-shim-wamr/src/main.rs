//! `containerd-shim-wamr-v1`: the shared shim with the WAMR engine.

mod engine;
mod wamr;

fn main() {
    containerd_shim_wasm::run::<engine::WamrEngine>(&wamr::version());
}
