//! What the container's init process runs once `libcontainer` has set up its namespaces,
//! cgroup, mounts, user and capabilities: the native program (exec'ed, as runc does) or the
//! Wasm module (run by the engine in this process).

use std::io::Write;
use std::os::fd::RawFd;
use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use log::{debug, error, warn};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use oci_spec::runtime::Spec;

use super::seccomp::ExecFilter;
use crate::config::DEADLINE_EXIT_STATUS;
use crate::engine::{Engine, WasiContext};

/// The status of a container whose module trapped or failed to instantiate: 128 + SIGABRT,
/// as `wasmtime run` ends on a trap and as a native program that aborts ends. runwasi gives
/// 137, the status of a SIGKILL and of an OOM kill, so a trapped module would be taken for
/// one of those; the trap's message is on the container's stderr.
pub const TRAP_EXIT_STATUS: i32 = 134;

/// The workload a container runs, prepared before its init process is created.
pub enum Prepared<E: Engine> {
    Native,
    Wasm {
        engine: E,
        module: Arc<E::Module>,
        /// What the module sees, made by the helper from the spec.
        ctx: Box<WasiContext>,
        /// Descriptors the engine opened for the module and still uses (wasmtime maps the
        /// precompiled artifact's file and makes memory images from it): kept open.
        engine_fds: Vec<RawFd>,
    },
}

impl<E: Engine> Clone for Prepared<E> {
    fn clone(&self) -> Self {
        match self {
            Prepared::Native => Prepared::Native,
            Prepared::Wasm {
                engine,
                module,
                ctx,
                engine_fds,
            } => Prepared::Wasm {
                engine: engine.clone(),
                module: Arc::clone(module),
                ctx: ctx.clone(),
                engine_fds: engine_fds.clone(),
            },
        }
    }
}

/// `libcontainer`'s plug point for the container's workload.
pub struct ShimExecutor<E: Engine> {
    pub container_id: String,
    pub prepared: Prepared<E>,
    /// For an exec process: the container's seccomp filter, which libcontainer does not
    /// apply to exec processes (see `helper/exec_seccomp.rs`).
    pub exec_filter: Option<ExecFilter>,
}

impl<E: Engine> Clone for ShimExecutor<E> {
    fn clone(&self) -> Self {
        Self {
            container_id: self.container_id.clone(),
            prepared: self.prepared.clone(),
            exec_filter: self.exec_filter.clone(),
        }
    }
}

impl<E: Engine> Executor for ShimExecutor<E> {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(filter) = &self.exec_filter {
            // The message reaches the helper (libcontainer's error pipe) and the user.
            filter
                .apply()
                .map_err(|e| ExecutorError::Other(format!("{e:#}")))?;
        }
        match &self.prepared {
            Prepared::Native => DefaultExecutor {}.exec(&with_home(spec)),
            Prepared::Wasm {
                engine,
                module,
                ctx,
                engine_fds,
            } => {
                close_inherited_descriptors(engine_fds);
                if let Err(e) = drop_capabilities_as_execve_does() {
                    return Err(ExecutorError::Other(format!(
                        "container {}: {e:#}",
                        self.container_id
                    )));
                }
                let status = run_module(&self.container_id, engine, module, ctx);
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                std::process::exit(status)
            }
        }
    }

    /// The create helper already resolved the workload in the rootfs (a native program:
    /// found and executable; a module: compiled and linked), with messages that name the file.
    fn validate(&self, _spec: &Spec) -> Result<(), ExecutorValidationError> {
        Ok(())
    }
}

fn run_module<E: Engine>(id: &str, engine: &E, module: &E::Module, ctx: &WasiContext) -> i32 {
    if let Err(e) = exit_on_termination_signals() {
        error!(id; "container {id}: cannot install signal handlers: {e}");
    }
    if let Some(deadline) = ctx.settings.deadline
        && engine.runs_to_completion(module)
    {
        stop_at_deadline(id, &ctx.args[0], deadline);
    }
    let began = std::time::Instant::now();
    let status = match engine.run(module, ctx) {
        Ok(status) => status,
        Err(e) => {
            error!(id; "container {id}: {} failed: {e:#}", ctx.args[0]);
            // Also where users look (`ctr run`, `docker logs`, `kubectl logs`): the container's
            // stderr, with the engine's Wasm backtrace when it gives one.
            let _ = writeln!(std::io::stderr(), "{}: {e:#}", ctx.args[0]);
            TRAP_EXIT_STATUS
        }
    };
    debug!(id; "container {id}: {} ran for {:?} (instantiation included), status {status}", ctx.args[0], began.elapsed());
    status
}

/// Ends this process (the container's) with [`DEADLINE_EXIT_STATUS`] once `deadline` has
/// passed, saying so on its stderr and in the shim log. A thread of its own, not the engine's
/// interruption: it stops a module blocked in a host call (a sleep, a read) as surely as one
/// that loops, on every engine.
fn stop_at_deadline(id: &str, module: &str, deadline: std::time::Duration) {
    let (watched, module) = (id.to_string(), module.to_string());
    let spawned = std::thread::Builder::new()
        .name("deadline".into())
        .spawn(move || {
            std::thread::sleep(deadline);
            let message = format!("deadline of {deadline:?} exceeded: {module} stopped");
            let _ = writeln!(std::io::stderr(), "{message}");
            warn!(id = watched.as_str(); "container {watched}: {message}");
            let _ = std::io::stdout().flush();
            // SAFETY: _exit ends the process at once; no destructor runs on any thread.
            unsafe { libc::_exit(DEADLINE_EXIT_STATUS) }
        });
    if let Err(e) = spawned {
        error!(id; "container {id}: cannot watch its deadline, stopping it now: {e}");
        std::process::exit(DEADLINE_EXIT_STATUS);
    }
}

/// A native program's capabilities change at its execve: a process of a non-root user keeps
/// only its ambient capabilities (capabilities(7): no file capabilities, so permitted and
/// effective become the ambient set). The engine runs the module in this process without an
/// execve, so the same change is made here; otherwise a module of `runAsUser: 1000` would keep
/// the spec's capabilities (CAP_DAC_OVERRIDE: writes wherever root could) that the same user's
/// native program loses.
fn drop_capabilities_as_execve_does() -> anyhow::Result<()> {
    use anyhow::Context;
    use caps::CapSet;
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let ambient = caps::read(None, CapSet::Ambient).context("read the ambient capabilities")?;
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::set(None, set, &ambient)
            .with_context(|| format!("drop the {set:?} capabilities of a non-root user"))?;
    }
    Ok(())
}

/// As runc does for a native program: without `HOME` in `process.env`, the user's home from
/// the container's `/etc/passwd` (we are inside the container here), or `/`. A Wasm module
/// gets exactly `process.env`.
fn with_home(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|kv| kv.starts_with("HOME=")) {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let home = home_of(&passwd, process.user().uid());
            env.push(format!("HOME={home}"));
            process.set_env(Some(env));
        }
    }
    spec
}

/// The home directory of `uid` in a passwd file (`name:pw:uid:gid:gecos:home:shell`), or `/`.
fn home_of(passwd: &str, uid: u32) -> String {
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() >= 6 && fields[2].parse() == Ok(uid))
        .map(|fields| fields[5].to_string())
        .filter(|home| !home.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// Unlike an exec'ed program, the runtime keeps every descriptor the create path had open
/// (libcontainer's channels, whatever the shim inherited). Keep only stdio, the shim log and
/// the engine's own (`keep`).
fn close_inherited_descriptors(keep: &[RawFd]) {
    const FIRST_UNUSED: RawFd = 4;
    let mut keep: Vec<RawFd> = keep
        .iter()
        .copied()
        .filter(|fd| *fd >= FIRST_UNUSED)
        .collect();
    keep.sort_unstable();
    let mut first = FIRST_UNUSED;
    for fd in keep.into_iter().chain([RawFd::MAX]) {
        if fd > first {
            close_range(first as libc::c_uint, (fd - 1) as libc::c_uint);
        }
        first = fd.saturating_add(1);
    }
}

fn close_range(first: libc::c_uint, last: libc::c_uint) {
    // SAFETY: nothing in this process uses these descriptors. nix has no close_range.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if closed != 0 {
        error!(
            "close inherited descriptors {first}..={last}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A Wasm module cannot handle signals, and as the pid-1 of its pid namespace the process
/// would ignore SIGTERM and SIGINT: exit at once with the status a killed process reports,
/// even from inside a loop that never calls the host.
fn exit_on_termination_signals() -> nix::Result<()> {
    extern "C" fn exit_now(signal: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) }
    }
    let action = SigAction::new(
        SigHandler::Handler(exit_now),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only calls an async-signal-safe function.
        unsafe { sigaction(signal, &action) }?;
    }
    // libcontainer may leave signals blocked; the handler must run.
    SigSet::from_iter([Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]).thread_unblock()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::spec;

    #[test]
    fn home_comes_from_passwd_or_is_the_root() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nodd\n";
        assert_eq!(home_of(passwd, 0), "/root");
        assert_eq!(home_of(passwd, 1000), "/home/app");
        assert_eq!(home_of(passwd, 7), "/");
        assert_eq!(home_of("", 0), "/");
        let env_of = |spec: Spec| with_home(&spec).process().clone().unwrap().env().clone();
        let added = env_of(spec(&["/prog"], &["A=1"], "/", false)).unwrap();
        assert!(added.iter().any(|kv| kv.starts_with("HOME=")), "{added:?}");
        let kept = env_of(spec(&["/prog"], &["HOME=/mine"], "/", false)).unwrap();
        assert_eq!(kept, ["HOME=/mine"]);
    }
}
