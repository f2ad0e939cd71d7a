//! The `libcontainer` builder for every process the helper starts, a container's init or an
//! exec process: its state root, executor, preserved descriptors and stdio.

use std::path::Path;

use anyhow::{Context, anyhow};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use crate::engine::Engine;
use crate::init::executor::ShimExecutor;
use crate::request::Kind;
use crate::stdio::StdioPaths;

/// What every process the helper starts has in common.
pub fn base_builder<E: Engine>(
    id: &str,
    state_root: &Path,
    executor: ShimExecutor<E>,
    kind: Kind,
) -> anyhow::Result<ContainerBuilder> {
    // libcontainer forks from here on: the engine must not have left a thread behind.
    super::threads::ensure_single_threaded(E::NAME)?;
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_root_path(state_root)
        .map_err(|e| anyhow!(e).context(format!("state root {}", state_root.display())))?;
    Ok(builder
        .with_executor(executor)
        // Only a Wasm runtime keeps the shim log; a native program gets no extra fd.
        .with_preserved_fds(if kind == Kind::Wasm { 1 } else { 0 }))
}

/// The process's stdio: the task's FIFOs, or with a terminal the pty that its init creates
/// and sends to the console socket.
pub fn with_stdio(
    builder: ContainerBuilder,
    console_socket: Option<&Path>,
    stdio: &StdioPaths,
) -> anyhow::Result<ContainerBuilder> {
    if let Some(socket) = console_socket {
        return Ok(builder.with_console_socket(Some(socket)));
    }
    let [stdin, stdout, stderr] = stdio.open_for_process().context("open the stdio")?;
    Ok(builder
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr))
}
