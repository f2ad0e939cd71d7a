//! The one plug point between the shared shim and a WebAssembly engine.
//!
//! An engine crate implements [`Engine`]; everything else (the shim protocol, containers,
//! cgroups, stdio, events) is owned by this library. The engine is used in two places:
//!
//! * at `create`, in a short-lived, single-threaded helper process: [`Engine::compile`] turns the
//!   module's bytes into a [`Engine::Module`] that is ready to instantiate. All errors the user
//!   can fix (invalid module, missing export, unknown import) surface here, so `create` fails
//!   with a message that names the file.
//! * at `start`, inside the container's init process (its namespaces, cgroup and rootfs already
//!   set up by `libcontainer`): [`Engine::run`] instantiates the module with a WASI context and
//!   calls the entry point. The process's stdin, stdout and stderr are the task's stdio.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{ContainerSettings, EngineConfig};

/// A WebAssembly engine that can run WASI modules.
///
/// ```
/// use containerd_shim_wasm::{Engine, EngineConfig, WasiContext};
///
/// /// An engine that accepts any module and runs it as a no-op.
/// #[derive(Clone)]
/// struct Noop;
///
/// impl Engine for Noop {
///     const NAME: &'static str = "noop";
///     type Module = Vec<u8>;
///     fn new(config: &EngineConfig) -> anyhow::Result<Self> {
///         config.refuse_all(Self::NAME)?;
///         Ok(Noop)
///     }
///     fn compile(&self, bytes: &[u8], _entry: &str) -> anyhow::Result<Vec<u8>> {
///         Ok(bytes.to_vec())
///     }
///     fn run(&self, _module: &Vec<u8>, _ctx: &WasiContext) -> anyhow::Result<i32> {
///         Ok(0)
///     }
/// }
///
/// // The binary's `main` is then `containerd_shim_wasm::run::<Noop>("1.0")`.
/// assert!(Noop::new(&EngineConfig::default()).is_ok());
/// assert!(Noop.can_run(b"\0asm\x01\0\0\0"));
/// assert!(!Noop.can_run(b"\x7fELF"));
/// ```
///
/// Engines and modules never cross threads: they live in the single-threaded create helper
/// and in the container's init process (a fork of it). So nothing here must be `Send` or
/// `Sync`, and an engine over a C library needs no `unsafe impl` for them.
pub trait Engine: Clone + 'static {
    /// Short name: the binary is `containerd-shim-<NAME>-<SHIM_VERSION>`, the runtime
    /// `io.containerd.<NAME>.<SHIM_VERSION>`.
    const NAME: &'static str;

    /// The version in the shim's names: `v1` for ours, `v2` where users already know a shim by
    /// that name (`containerd-shim-spin-v2`). All speak containerd's shim v2 protocol.
    const SHIM_VERSION: &'static str = "v1";

    /// A compiled module, linked against the host functions the engine provides.
    type Module: 'static;

    /// Whether [`Engine::run`] honours [`Preopen::read_only`] itself. An engine that cannot
    /// (its WASI grants write rights on every directory) says `false`: a container that asks
    /// for a read-only preopen the kernel would not enforce is then refused at create.
    const READ_ONLY_PREOPENS: bool = true;

    /// The file in the container's rootfs that holds the application, for an engine that runs
    /// applications rather than the module `process.args[0]` names (Spin: `/spin.toml`, run
    /// whatever the args say, as SpinKube gives its containers the command `/`). A container
    /// whose args name a native executable still runs it (a sidecar in the same pod).
    /// `None`, the default: args[0] is the module.
    const APPLICATION_FILE: Option<&'static str> = None;

    /// Where the application is when the rootfs has no [`Engine::APPLICATION_FILE`] (Spin: the
    /// locked app that the shim writes for a Spin OCI artifact, see [`crate::spin_artifact`]);
    /// [`Engine::load_application`] is then given this file. `None`, the default: no other
    /// place.
    const APPLICATION_FALLBACK: Option<&'static str> = None;

    /// What the engine enforces beyond WASI: a container asking for more is refused at create,
    /// naming the engine and the setting. The default promises nothing.
    const CAPABILITIES: Capabilities = Capabilities::NONE;

    /// Builds the engine with the node's settings (the runtime options that change how
    /// modules compile and run); a setting the engine cannot honour is an error naming the
    /// option. Called once per process that needs it.
    fn new(config: &EngineConfig) -> anyhow::Result<Self>;

    /// Loads the application of an engine with an [`Engine::APPLICATION_FILE`]: `file` is that
    /// file inside `rootfs` (the container's rootfs, mounted in the create helper). Reads what
    /// it names, compiles and links everything (through [`crate::cache::compile`] where the
    /// node's precompile cache helps), so that every error a user can fix fails `create`;
    /// `container` names the container in logs.
    fn load_application(
        &self,
        _rootfs: &std::path::Path,
        _file: &std::path::Path,
        _container: &str,
    ) -> anyhow::Result<Self::Module> {
        anyhow::bail!("the {} engine runs modules, not applications", Self::NAME)
    }

    /// Whether these bytes are something this engine runs (by default: a core Wasm module).
    fn can_run(&self, bytes: &[u8]) -> bool {
        bytes.starts_with(WASM_MAGIC)
    }

    /// Whether the engine runs WebAssembly components (WASI 0.2 and 0.3 worlds) besides core
    /// modules. A component given to an engine that does not is refused before compiling,
    /// with what it is and which shim runs it.
    fn runs_components(&self) -> bool {
        false
    }

    /// Compiles and links `bytes`, and checks that the export `entry` exists.
    fn compile(&self, bytes: &[u8], entry: &str) -> anyhow::Result<Self::Module>;

    /// What makes precompiled artifacts interchangeable: the engine's version and settings.
    /// `None` (the default) means the engine has no precompiled form and nothing is cached.
    fn precompile_key(&self) -> Option<String> {
        None
    }

    /// Compiles `bytes` into an artifact for the node's precompile cache.
    fn precompile(&self, _bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::bail!("the {} engine has no precompiled form", Self::NAME)
    }

    /// Loads an artifact made by [`Engine::precompile`] under the same key, then links it and
    /// checks `entry` as [`Engine::compile`] does. The library only passes artifacts whose
    /// checksum it verified; the engine should still check that they are its own.
    fn load_precompiled(&self, _artifact: &[u8], _entry: &str) -> anyhow::Result<Self::Module> {
        anyhow::bail!("the {} engine has no precompiled form", Self::NAME)
    }

    /// [`Engine::load_precompiled`] from the cache file holding the artifact (checksum
    /// verified). By default the file is read; an engine that can map it shares its pages
    /// with every other container using it. The library never changes the file in place.
    fn load_precompiled_file(
        &self,
        artifact: &std::path::Path,
        entry: &str,
    ) -> anyhow::Result<Self::Module> {
        let bytes = std::fs::read(artifact)
            .map_err(|e| anyhow::anyhow!("read {}: {e}", artifact.display()))?;
        self.load_precompiled(&bytes, entry)
    }

    /// Whether `module` runs to completion (a command), so that a deadline applies to it; a
    /// server (an HTTP component, a Spin app) runs until stopped, and its requests have their
    /// own deadline.
    fn runs_to_completion(&self, _module: &Self::Module) -> bool {
        true
    }

    /// Runs `module` to completion and returns its exit status (`proc_exit`'s code, 0 when
    /// the entry point returns). An error (a trap) is reported by the caller as a failure.
    fn run(&self, module: &Self::Module, ctx: &WasiContext) -> anyhow::Result<i32>;
}

/// The first bytes of every WebAssembly binary.
pub const WASM_MAGIC: &[u8] = b"\0asm";

/// Whether `bytes` are a WebAssembly component rather than a core module: after the magic, a
/// core module has version 1 (`01 00`) and layer 0, a component a later version and layer 1
/// (`01 00`), per the component model's binary format.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(WASM_MAGIC) && bytes.get(6..8) == Some(&[0x01, 0x00])
}

/// What the module sees of the world: WASI arguments, environment and directories.
///
/// Standard input, output and error are the process's own descriptors 0, 1 and 2, which the
/// library has connected to the task's stdio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasiContext {
    /// `argv`, `argv[0]` being the module path as the container named it.
    pub args: Vec<String>,
    /// `process.env` of the spec, as `(name, value)`.
    pub env: Vec<(String, String)>,
    /// Directories the module may open.
    pub preopens: Vec<Preopen>,
    /// The exported function to call: `_start` unless the entry point said `path#func`.
    pub entry: String,
    /// Whether the module may open network connections (WASI sockets, outgoing HTTP), in
    /// the container's network namespace. Off unless the container asks for it with the
    /// annotation [`NETWORK_ANNOTATION`] set to `allow`.
    pub network: bool,
    /// The container's id, for messages about it (a refused host, a deadline).
    pub container: String,
    /// Limits inside the sandbox and the hosts the module may reach (see
    /// [`Engine::CAPABILITIES`]): the library has refused at create whatever the engine said
    /// it cannot enforce. With `network` set and no allowed hosts, every host is allowed.
    pub settings: ContainerSettings,
    /// The container's annotations under [`ANNOTATION_PREFIX`], for settings that belong to
    /// one engine (e.g. how the wasmtime shim's HTTP server reuses instances). Settings the
    /// library reads itself (network, preopens) are in the fields above.
    pub annotations: BTreeMap<String, String>,
}

/// The namespace of every annotation the shims read: `io.containerd.wasm.<setting>`.
pub const ANNOTATION_PREFIX: &str = "io.containerd.wasm.";

/// The container annotation that gives a module network access: `io.containerd.wasm.network=allow`.
pub const NETWORK_ANNOTATION: &str = "io.containerd.wasm.network";

/// What an engine enforces of [`ContainerSettings`] and of the network rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Caps each linear memory at `max_memory` (growing past it fails, as it would in a
    /// full address space: `memory.grow` returns -1 or the engine traps).
    pub max_memory: bool,
    /// Caps each table at `max_table_elements`.
    pub max_table_elements: bool,
    /// Stops a command module at its `deadline`, exit status [`crate::config::DEADLINE_EXIT_STATUS`].
    pub deadline: bool,
    /// Answers a request of an HTTP server that passes its `request_deadline`.
    pub request_deadline: bool,
    /// How far the engine confines the module's sockets.
    pub sockets: Sockets,
}

impl Capabilities {
    /// Nothing enforced: settings are refused, and so are modules that import socket
    /// functions without the network allowed to every host.
    pub const NONE: Self = Self {
        max_memory: false,
        max_table_elements: false,
        deadline: false,
        request_deadline: false,
        sockets: Sockets::Unconfined,
    };
}

/// How an engine confines the sockets a module opens (WASI sockets, outgoing HTTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    /// To the allowed hosts, by scheme, name, address and port; nothing without the network.
    ByHost,
    /// The engine gives modules no function that opens a socket (a module importing one fails
    /// to link): the network rule and any allowed hosts hold, as nothing goes out.
    NoSockets,
    /// Not at all: a module importing socket functions is refused unless the network is
    /// allowed to every host.
    Unconfined,
}

/// A host directory made visible to the module under `guest_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    pub host_path: PathBuf,
    pub guest_path: String,
    pub read_only: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_told_from_core_modules() {
        assert!(is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm\x01\0\0\0"));
        assert!(!is_component(b"\x7fELF\x0d\0\x01\0"));
        assert!(!is_component(b"\0asm"));
    }
}
