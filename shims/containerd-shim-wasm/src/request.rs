//! What crosses the boundary between the shim and its helper process (see `helper/`): the
//! request, as one JSON text, and the helper's answer, as one JSON line. The shim builds a
//! request once from containerd's and hands it over unchanged; the helper reads it once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Options;

use crate::stdio::StdioPaths;

/// The first argument that turns the shim binary into the helper (re-executed, without the
/// zygote).
pub const HELPER_ARG: &str = "create-container";

/// What the shim asks the helper to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRequest {
    pub id: String,
    pub bundle: PathBuf,
    /// The snapshot's mounts, mounted at `<bundle>/rootfs` by the helper.
    pub rootfs: Vec<RootfsMount>,
    /// `libcontainer`'s state root; the container's state is `<root>/<id>`.
    pub state_root: PathBuf,
    pub systemd_cgroup: bool,
    pub stdio: StdioPaths,
    /// For a process with a terminal: where the pty master goes (the stdio is then the pty).
    pub console_socket: Option<PathBuf>,
    /// The modules of a Wasm OCI artifact, written into the rootfs by the shim (their paths in
    /// the container): with exactly one and no `process.args`, the one the container runs.
    pub wasm_modules: Vec<String>,
    /// The runtime options (`config.rs`), parsed and validated by the shim.
    pub options: Options,
    pub debug: bool,
}

/// What the shim asks the helper to start in a running container: an exec process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub container_id: String,
    pub exec_id: String,
    pub state_root: PathBuf,
    /// The OCI process spec that containerd sent, as JSON.
    pub process: serde_json::Value,
    pub stdio: StdioPaths,
    pub console_socket: Option<PathBuf>,
    /// The runtime options the container was created with.
    pub options: Options,
    pub debug: bool,
}

/// A job for the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HelperRequest {
    Create(CreateRequest),
    Exec(ExecRequest),
}

impl HelperRequest {
    pub fn container_id(&self) -> &str {
        match self {
            HelperRequest::Create(r) => &r.id,
            HelperRequest::Exec(r) => &r.container_id,
        }
    }

    /// What the helper works on, for messages.
    pub fn subject(&self) -> String {
        match self {
            HelperRequest::Create(r) => format!("container {}", r.id),
            HelperRequest::Exec(r) => {
                format!("exec process {} of container {}", r.exec_id, r.container_id)
            }
        }
    }

    /// Where the helper runs: a directory that exists for as long as the helper does.
    pub fn working_dir(&self) -> &Path {
        match self {
            HelperRequest::Create(r) => &r.bundle,
            HelperRequest::Exec(r) => &r.state_root,
        }
    }

    pub fn options(&self) -> &Options {
        match self {
            HelperRequest::Create(r) => &r.options,
            HelperRequest::Exec(r) => &r.options,
        }
    }

    pub fn debug(&self) -> bool {
        match self {
            HelperRequest::Create(r) => r.debug,
            HelperRequest::Exec(r) => r.debug,
        }
    }
}

/// The helper's answer: one JSON line on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Created {
    Ok {
        pid: i32,
        kind: Kind,
        /// Where the helper's time went, for the verb's trace (`shim/telemetry`).
        #[serde(default)]
        phases: Vec<Phase>,
    },
    Err {
        message: String,
    },
}

/// A phase of the helper's work (rootfs mount, module load, ...), by the wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub start: std::time::SystemTime,
    pub end: std::time::SystemTime,
}

/// How a container's workload is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A WebAssembly module, run by the engine inside the container.
    Wasm,
    /// An ELF binary or `#!` script, exec'ed as in any Linux container.
    Native,
}

/// One of containerd's snapshot mounts (`type`, `source`, `options`), which the helper mounts
/// at `<bundle>/rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootfsMount {
    pub fs_type: String,
    pub source: String,
    pub options: Vec<String>,
}

impl RootfsMount {
    pub fn from_request(mounts: &[containerd_shim::protos::types::mount::Mount]) -> Vec<Self> {
        mounts
            .iter()
            .map(|m| Self {
                fs_type: m.type_.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect()
    }
}
