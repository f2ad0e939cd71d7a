//! The runtimes under test. Adding an engine is one line in [`ENGINES`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Result, bail};

use crate::environment::containerd;

/// A containerd runtime: the `--runtime` name and the shim binary containerd starts for it.
#[derive(Debug, PartialEq, Eq)]
pub struct Runtime {
    /// Short name, used in container ids and messages.
    pub name: &'static str,
    /// containerd runtime type, e.g. `io.containerd.wasmtime.v1`.
    pub runtime_type: &'static str,
    /// The shim binary containerd looks up on its PATH for that runtime type.
    pub binary: &'static str,
    /// Whether the shim runs Wasm modules (false only for the runc reference).
    pub runs_wasm: bool,
    /// Why the shim binary would be missing and how to get it: the start of the reason an
    /// engine is skipped with.
    pub when_missing: &'static str,
    /// The tests checking what this runtime cannot do, each with the reason: they do not run
    /// on it, and `docs/engines.md` says "not supported" with the reason.
    pub unsupported: &'static [Unsupported],
}

/// A test a runtime is not expected to pass, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The test function's name (or a table row's).
    pub test: &'static str,
    pub reason: &'static str,
}

/// Every Wasm shim we build. An engine whose binary is not built is skipped with a
/// printed reason (see [`available_engines`]).
pub const ENGINES: &[Runtime] = &[
    Runtime {
        name: "wasmtime",
        runtime_type: "io.containerd.wasmtime.v1",
        binary: "containerd-shim-wasmtime-v1",
        runs_wasm: true,
        when_missing: NOT_BUILT,
        unsupported: &[],
    },
    Runtime {
        name: "wamr",
        runtime_type: "io.containerd.wamr.v1",
        binary: "containerd-shim-wamr-v1",
        runs_wasm: true,
        when_missing: NOT_BUILT,
        unsupported: &[],
    },
    // Built apart (outside the workspace), only where the WasmEdge C library is installed.
    Runtime {
        name: "wasmedge",
        runtime_type: "io.containerd.wasmedge.v1",
        binary: "containerd-shim-wasmedge-v1",
        runs_wasm: true,
        when_missing: "libwasmedge not installed \
            (`make build-wasmedge` builds the shim where it is, or says how to get it)",
        unsupported: &[
            Unsupported {
                test: "cwd_from_the_spec_is_the_working_directory",
                reason: NO_CWD_ON_WASMEDGE,
            },
            Unsupported {
                test: "exec_runs_in_its_own_working_directory",
                reason: NO_CWD_ON_WASMEDGE,
            },
        ],
    },
];

/// Why a WasmEdge module's relative paths resolve from `/` (see its engine's `CWD_PREOPEN`).
const NO_CWD_ON_WASMEDGE: &str = "relative paths resolve from /: WasmEdge orders preopens by \
    address, so a cwd preopen (\".\") would win at random";

/// Why a shim of the workspace would be missing.
const NOT_BUILT: &str = "not built (`cargo build --release`)";

/// The Spin shim: runs Spin applications (`/spin.toml`), not modules, so it is not one of
/// [`ENGINES`]; `tests/spin.rs` covers it.
pub const SPIN: Runtime = Runtime {
    name: "spin",
    runtime_type: "io.containerd.spin.v2",
    binary: "containerd-shim-spin-v2",
    runs_wasm: true,
    when_missing: NOT_BUILT,
    unsupported: &[],
};

/// The reference: what containerd users get for native containers today.
pub const RUNC: Runtime = Runtime {
    name: "runc",
    runtime_type: "io.containerd.runc.v2",
    binary: "containerd-shim-runc-v2",
    runs_wasm: false,
    when_missing: "not installed (Debian's containerd package ships it)",
    unsupported: &[],
};

impl Runtime {
    /// Why this runtime cannot do what test `test` checks, if it cannot.
    pub fn unsupported(&self, test: &str) -> Option<&'static str> {
        self.unsupported
            .iter()
            .find(|unsupported| unsupported.test == test)
            .map(|unsupported| unsupported.reason)
    }

    /// Where containerd will find this runtime's shim, or why it will not.
    pub fn locate(&self) -> Result<PathBuf> {
        let env = containerd();
        let dirs = env.shim_search_path()?;
        if let Some(found) = dirs
            .iter()
            .map(|dir| dir.join(self.binary))
            .find(|candidate| env.path(candidate).is_file())
        {
            return Ok(found);
        }
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        bail!(
            "{}: {} is not on containerd's PATH ({})",
            self.when_missing,
            self.binary,
            searched.join(":")
        )
    }
}

/// The engines whose shim containerd can start. Every skipped engine is reported once per
/// test binary on the real stderr (not captured by the test harness), with the reason.
pub fn available_engines() -> &'static [&'static Runtime] {
    &availability().available
}

/// The engines whose shim is missing: they are skipped (see [`available_engines`]).
pub fn skipped_engines() -> &'static [&'static Runtime] {
    &availability().skipped
}

struct Availability {
    available: Vec<&'static Runtime>,
    skipped: Vec<&'static Runtime>,
}

fn availability() -> &'static Availability {
    static AVAILABILITY: OnceLock<Availability> = OnceLock::new();
    AVAILABILITY.get_or_init(|| {
        let (available, skipped) = ENGINES.iter().partition(|engine| match engine.locate() {
            Ok(_) => true,
            Err(reason) => {
                report_uncaptured(&format!(
                    "SKIPPED engine {} ({}): {reason:#}",
                    engine.name, engine.runtime_type
                ));
                false
            }
        });
        Availability { available, skipped }
    })
}

/// Writes a line to the process's stderr directly: libtest captures only `eprintln!`.
pub fn report_uncaptured(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "shim-conformance: {line}");
}
