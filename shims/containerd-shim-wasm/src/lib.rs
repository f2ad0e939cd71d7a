//! The shared library of our containerd shims for WebAssembly.
//!
//! An engine crate implements [`Engine`] and calls [`run`] from `main`; this library provides
//! the rest: the containerd shim v2 protocol (`start`, `delete`, the ttrpc Task service,
//! events), containers built with `libcontainer` (one process, cgroup and mount namespace each),
//! native containers in the same shim (ELF binaries and `#!` scripts), stdio, and stats.
//! See `docs/architecture.md` for the layers and where each Task verb lives.

// The contract with engines.
pub mod config;
pub mod engine;
pub mod entrypoint;

// One folder per process; see each folder's module comment for its rules.
mod dead_shim;
mod helper;
mod init;
mod shim;

// What more than one of those processes share.
pub mod allowed_hosts;
mod container_state;
mod pidfd;
mod proc_text;
mod request;
pub mod settings;
mod shim_log;
mod stdio;
#[cfg(test)]
mod test_support;

pub use config::{ContainerSettings, EngineConfig};
pub use engine::{
    ANNOTATION_PREFIX, Capabilities, Engine, NETWORK_ANNOTATION, Preopen, Sockets, WASM_MAGIC,
    WasiContext, is_component,
};
pub use init::executor::TRAP_EXIT_STATUS;
// The parsers of what users write in a spec, public for the property tests
// (tests/parsing_properties.rs).
pub use helper::{preopens, workload};
// The node's precompile cache and module size limit, for engines that load applications of
// several modules (`Engine::load_application`).
pub use helper::{cache, module_size};
// Where a Spin OCI artifact's locked app and files are written in the rootfs, for the Spin
// engine that reads them.
pub use shim::spin_artifact;

/// The whole shim binary: call it from `main` with the engine type.
///
/// `engine_version` is shown by `-v` and `-info`.
pub fn run<E: Engine>(engine_version: &str) {
    let args: Vec<String> = std::env::args().collect();
    // The binary is every process of the shim; the first argument says which.
    let process_arg = |n: usize| args.get(n).map(String::as_str).unwrap_or_default();
    match process_arg(1) {
        request::HELPER_ARG => helper::run::helper_main::<E>(process_arg(2), None),
        helper::zygote::ZYGOTE_ARG => helper::zygote::zygote_main::<E>(process_arg(2)),
        init::propagation_hook::PROPAGATION_HOOK_ARG => {
            init::propagation_hook::propagation_hook_main(&args[2..])
        }
        _ => {}
    }
    let flags = containerd_shim::parse(&args[1..]).unwrap_or_default();
    if flags.version {
        shim::lifecycle::print_version(E::NAME, E::SHIM_VERSION, engine_version);
        return;
    }
    if flags.info {
        if let Err(e) = shim::lifecycle::write_info(E::NAME, E::SHIM_VERSION, engine_version) {
            eprintln!(
                "{}: write runtime info: {e}",
                shim::lifecycle::binary_name(E::NAME, E::SHIM_VERSION)
            );
            std::process::exit(1);
        }
        return;
    }
    containerd_shim::run::<shim::lifecycle::WasmShim>(
        &shim::lifecycle::runtime_id(E::NAME, E::SHIM_VERSION),
        Some(shim::lifecycle::shim_config()),
    );
}
