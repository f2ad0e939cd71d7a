//! The shared library of our containerd shims for WebAssembly.
//!
//! An engine crate implements [`Engine`] and calls [`run`] from `main`; this library provides
//! the rest: the containerd shim v2 protocol (`start`, `delete`, the ttrpc Task service,
//! events), containers built with `libcontainer` (one process, cgroup and mount namespace each),
//! native containers in the same shim (ELF binaries and `#!` scripts), stdio, and stats.
//! See `docs/architecture.md` for the layers and where each Task verb lives.

mod cache;
mod console;
mod container;
mod creator;
mod cwd;
mod dead_shim;
pub mod engine;
pub mod entrypoint;
mod events;
mod exec;
mod exec_seccomp;
mod executor;
mod module_size;
mod oom;
mod options;
pub mod preopens;
mod proc_text;
mod process;
mod reaper;
mod rootfs;
mod shim;
mod shim_log;
mod spec_compat;
mod stats;
mod status;
mod stdio;
mod task;
pub mod workload;
mod zygote;

pub use engine::{Engine, NETWORK_ANNOTATION, Preopen, WASM_MAGIC, WasiContext};
pub use executor::TRAP_EXIT_STATUS;

/// The whole shim binary: call it from `main` with the engine type.
///
/// `engine_version` is shown by `-v` and `-info`.
pub fn run<E: Engine>(engine_version: &str) {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(creator::HELPER_ARG) {
        creator::helper_main::<E>(args.get(2).map(String::as_str).unwrap_or_default(), None);
    }
    if args.get(1).map(String::as_str) == Some(spec_compat::PROPAGATION_HOOK_ARG) {
        spec_compat::propagation_hook_main(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some(zygote::ZYGOTE_ARG) {
        zygote::zygote_main::<E>(args.get(2).map(String::as_str).unwrap_or_default());
    }
    let flags = containerd_shim::parse(&args[1..]).unwrap_or_default();
    if flags.version {
        shim::print_version(E::NAME, engine_version);
        return;
    }
    if flags.info {
        if let Err(e) = shim::write_info(E::NAME, engine_version) {
            eprintln!("{}: write runtime info: {e}", shim::binary_name(E::NAME));
            std::process::exit(1);
        }
        return;
    }
    containerd_shim::run::<shim::WasmShim>(&shim::runtime_id(E::NAME), Some(shim::shim_config()));
}
