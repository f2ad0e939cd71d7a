//! Exec processes: more processes in a running container (`ctr task exec`, `kubectl exec`,
//! the CRI's `ExecSync` behind exec probes).
//!
//! `Exec` only records the process; `Start` has a helper (as for create) start it with
//! `libcontainer`'s tenant builder in the container's namespaces and cgroup. In a native
//! container that is an ordinary process; in a Wasm container, a module from the rootfs run by
//! the engine with the exec's args, env and cwd. The process runs at once, so it can exit
//! before the shim knows its pid: the reaper's [`Adoption`](crate::shim::reaper::Adoption) keeps
//! such an exit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::anyhow;
use log::warn;

use crate::config::Options;
use crate::request::Kind;
use crate::request::{ExecRequest, HelperRequest};
use crate::shim::console::{ConsoleSocket, connect_console};
use crate::shim::error::ContainerError;
use crate::shim::process::Process;
use crate::shim::reaper::{Adopted, Reaper, UNKNOWN_EXIT_STATUS};
use crate::shim::runtime::{Runtime, StateRef};
use crate::shim::status::{IllegalTransition, Status};
use crate::stdio::{StdioHolder, StdioPaths};

pub struct Exec {
    pub exec_id: String,
    pub process: Process,
    /// The OCI process spec containerd sent, run at start.
    spec: serde_json::Value,
    /// What it runs, known once started.
    pub kind: OnceLock<Kind>,
}

/// The exec processes of one container, by exec id, from `Exec` until their delete.
pub struct Execs {
    container_id: String,
    /// The runtime options of the container, for the helper of each exec.
    options: Options,
    map: Mutex<HashMap<String, Arc<Exec>>>,
}

impl Exec {
    /// Sends `signal` to the exec process.
    pub fn kill(&self, signal: u32) -> Result<(), ContainerError> {
        self.process.check_kill()?;
        let signal = i32::try_from(signal).map_err(|_| anyhow!("invalid signal {signal}"))?;
        Ok(self.process.signal(signal)?)
    }
}

impl Execs {
    pub fn new(container_id: &str, options: Options) -> Self {
        Self {
            container_id: container_id.to_string(),
            options,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Records an exec process in the container whose init process is `init`; it runs at
    /// [`Execs::start`].
    pub fn add(
        &self,
        init: &Process,
        exec_id: &str,
        spec: serde_json::Value,
        stdio: StdioPaths,
        terminal: bool,
    ) -> Result<Arc<Exec>, ContainerError> {
        let name = format!(
            "exec process {} of container {}",
            exec_id, self.container_id
        );
        let mut execs = self.map.lock().unwrap();
        if execs.contains_key(exec_id) {
            return Err(ContainerError::AlreadyExists(name));
        }
        let init_status = init.status();
        if !matches!(*init_status, Status::Running) {
            return Err(IllegalTransition {
                what: init.name.clone(),
                action: "exec in",
                status: init_status.name(),
            }
            .into());
        }
        drop(init_status);
        let held = StdioHolder::open(&stdio).map_err(|e| anyhow!("{name}: {e}"))?;
        let exec = Arc::new(Exec {
            exec_id: exec_id.to_string(),
            process: Process::new(
                self.container_id.clone(),
                name,
                exec_id.to_string(),
                stdio,
                terminal,
                held,
            ),
            spec,
            kind: OnceLock::new(),
        });
        execs.insert(exec_id.to_string(), Arc::clone(&exec));
        Ok(exec)
    }

    pub fn get(&self, exec_id: &str) -> Result<Arc<Exec>, ContainerError> {
        self.map
            .lock()
            .unwrap()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| {
                ContainerError::NotFound(format!(
                    "exec process {exec_id} of container {}",
                    self.container_id
                ))
            })
    }

    /// created -> running: starts the exec process. `announce` runs under its status lock
    /// once it runs, before `on_exit` (which runs once, after it has stopped).
    #[allow(
        clippy::too_many_arguments,
        reason = "the container's parts an exec needs"
    )]
    pub fn start(
        &self,
        exec: &Arc<Exec>,
        init: &Process,
        state: &StateRef,
        runtime: &dyn Runtime,
        reaper: &Reaper,
        debug: bool,
        announce: impl FnOnce(&Exec),
        on_exit: impl FnOnce(&Exec, u32, SystemTime) + Send + 'static,
    ) -> Result<i32, ContainerError> {
        let process = &exec.process;
        // Held until the process runs, so nobody sees the moment in between.
        let mut status = process.status();
        status.start(&process.name)?;
        let init_status = *init.status();
        if init_status != Status::Running {
            drop(status);
            process.set_exited(UNKNOWN_EXIT_STATUS, |_, _| {});
            return Err(IllegalTransition {
                what: init.name.clone(),
                action: "exec in",
                status: init_status.name(),
            }
            .into());
        }
        let console_socket = match process.terminal.then(ConsoleSocket::bind).transpose() {
            Ok(socket) => socket,
            Err(e) => {
                drop(status);
                process.set_exited(UNKNOWN_EXIT_STATUS, |_, _| {});
                return Err(anyhow!("{}: console socket: {e}", process.name).into());
            }
        };
        let request = HelperRequest::Exec(ExecRequest {
            container_id: self.container_id.clone(),
            exec_id: exec.exec_id.clone(),
            state_root: state.state_root.clone(),
            process: exec.spec.clone(),
            stdio: process.stdio.clone(),
            console_socket: console_socket.as_ref().map(|s| s.path().to_path_buf()),
            options: self.options.clone(),
            debug,
        });
        let adoption = reaper.expect_adoption();
        let started = runtime.run_helper(&request).and_then(|(pid, kind)| {
            if let Some(socket) = &console_socket {
                let console = connect_console(socket, &process.stdio, &process.name);
                // The process runs already: without its terminal it must not go on.
                match console {
                    Ok(console) => process.set_console(console),
                    Err(e) => {
                        if let Err(kill) = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        ) {
                            warn!(id = self.container_id.as_str(); "{}: SIGKILL: {kill}", process.name);
                        }
                        return Err(e);
                    }
                }
            }
            Ok((pid, kind))
        });
        let (pid, kind) = match started {
            Ok(started) => started,
            Err(e) => {
                // Nothing runs: let waiters go, as for a process that died at once.
                drop(status);
                process.set_exited(UNKNOWN_EXIT_STATUS, |_, _| {});
                return Err(e.into());
            }
        };
        let _ = exec.kind.set(kind);
        let watched = Arc::clone(exec);
        let on_exit: crate::shim::reaper::OnExit = Box::new(move |exit_status| {
            watched
                .process
                .set_exited(exit_status, |status, at| on_exit(&watched, status, at));
        });
        let already = match adoption.watch(pid, on_exit) {
            Adopted::Watched(pidfd) => {
                process.set_pid(pid, Some(pidfd));
                None
            }
            Adopted::Exited(exit_status, on_exit) => {
                process.set_pid(pid, None);
                Some((exit_status, on_exit))
            }
        };
        announce(exec);
        drop(status);
        if let Some((exit_status, on_exit)) = already {
            on_exit(exit_status);
        }
        Ok(pid)
    }

    /// Removes a stopped (or never started) exec process; returns its exit.
    pub fn delete(&self, exec_id: &str) -> Result<(u32, SystemTime), ContainerError> {
        let exec = self.get(exec_id)?;
        let process = &exec.process;
        let never_started = {
            let status = process.status();
            status.check_delete(&process.name)?;
            *status == Status::Created
        };
        if never_started {
            process.set_exited(UNKNOWN_EXIT_STATUS, |_, _| {});
        }
        process.release_stdio();
        self.map.lock().unwrap().remove(exec_id);
        Ok(process.wait())
    }

    /// After the container's delete: the processes died with it, and their FIFO holders go
    /// with them.
    pub fn release_all(&self) {
        for exec in self.map.lock().unwrap().drain().map(|(_, exec)| exec) {
            exec.process.release_stdio();
        }
    }
}
