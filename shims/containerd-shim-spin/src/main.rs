//! `containerd-shim-spin-v2`: the shared shim running Spin applications with wasmtime.

use containerd_shim_spin::engine::SpinEngine;
use containerd_shim_wasmtime::engine::WASMTIME_VERSION;

fn main() {
    containerd_shim_wasm::run::<SpinEngine>(WASMTIME_VERSION);
}
