//! Exec processes: more processes in a running container (`ctr task exec`, `kubectl exec`,
//! the CRI's `ExecSync` behind exec probes).
//!
//! `Exec` only records the process; `Start` has a helper (as for create) start it with
//! `libcontainer`'s tenant builder in the container's namespaces and cgroup. In a native
//! container that is an ordinary process; in a Wasm container, a module from the rootfs run by
//! the engine with the exec's args, env and cwd. The process runs at once, so it can exit
//! before the shim knows its pid: the reaper's [`Adoption`](crate::reaper::Adoption) keeps
//! such an exit.

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use anyhow::anyhow;
use log::warn;

use crate::console::ConsoleSocket;
use crate::container::{Container, ContainerError, connect_console};
use crate::creator::{self, ExecRequest, HelperRequest};
use crate::process::Process;
use crate::reaper::{Adopted, Reaper, UNKNOWN_EXIT_STATUS};
use crate::status::{IllegalTransition, Status};
use crate::stdio::{StdioHolder, StdioPaths};
use crate::workload::Kind;

pub struct Exec {
    pub exec_id: String,
    pub process: Process,
    /// The OCI process spec containerd sent, run at start.
    spec: serde_json::Value,
    /// What it runs, known once started.
    pub kind: OnceLock<Kind>,
}

/// What `Exec` needs from the request.
pub struct ExecSpawn {
    pub exec_id: String,
    pub spec: serde_json::Value,
    pub stdio: StdioPaths,
    pub terminal: bool,
}

impl Exec {
    /// Sends `signal` to the exec process.
    pub fn kill(&self, signal: u32) -> Result<(), ContainerError> {
        self.process.check_kill()?;
        let signal = i32::try_from(signal).map_err(|_| anyhow!("invalid signal {signal}"))?;
        Ok(self.process.signal(signal)?)
    }
}

impl Container {
    /// Records an exec process; it runs at [`Container::start_exec`].
    pub fn add_exec(&self, spawn: ExecSpawn) -> Result<Arc<Exec>, ContainerError> {
        let name = format!("exec process {} of container {}", spawn.exec_id, self.id);
        let mut execs = self.execs.lock().unwrap();
        if execs.contains_key(&spawn.exec_id) {
            return Err(ContainerError::AlreadyExists(name));
        }
        let init = self.init.status();
        if !matches!(*init, Status::Running) {
            return Err(IllegalTransition {
                what: self.init.name.clone(),
                action: "exec in",
                status: init.name(),
            }
            .into());
        }
        drop(init);
        let held = StdioHolder::open(&spawn.stdio).map_err(|e| anyhow!("{name}: {e}"))?;
        let exec = Arc::new(Exec {
            exec_id: spawn.exec_id.clone(),
            process: Process::new(
                self.id.clone(),
                name,
                spawn.exec_id.clone(),
                spawn.stdio,
                spawn.terminal,
                held,
            ),
            spec: spawn.spec,
            kind: OnceLock::new(),
        });
        execs.insert(spawn.exec_id, Arc::clone(&exec));
        Ok(exec)
    }

    pub fn exec(&self, exec_id: &str) -> Result<Arc<Exec>, ContainerError> {
        self.execs
            .lock()
            .unwrap()
            .get(exec_id)
            .cloned()
            .ok_or_else(|| {
                ContainerError::NotFound(format!("exec process {exec_id} of container {}", self.id))
            })
    }

    /// created -> running: starts the exec process. `announce` runs under its status lock
    /// once it runs, before `on_exit` (which runs once, after it has stopped).
    pub fn start_exec(
        &self,
        exec: &Arc<Exec>,
        helpers: &creator::Helpers,
        reaper: &Reaper,
        debug: bool,
        announce: impl FnOnce(&Exec),
        on_exit: impl FnOnce(&Exec) + Send + 'static,
    ) -> Result<i32, ContainerError> {
        let process = &exec.process;
        // Held until the process runs, so nobody sees the moment in between.
        let mut status = process.status();
        status.start(&process.name)?;
        let init_status = *self.init.status();
        if init_status != Status::Running {
            drop(status);
            process.set_exited(UNKNOWN_EXIT_STATUS);
            return Err(IllegalTransition {
                what: self.init.name.clone(),
                action: "exec in",
                status: init_status.name(),
            }
            .into());
        }
        let console_socket = match process.terminal.then(ConsoleSocket::bind).transpose() {
            Ok(socket) => socket,
            Err(e) => {
                drop(status);
                process.set_exited(UNKNOWN_EXIT_STATUS);
                return Err(anyhow!("{}: console socket: {e}", process.name).into());
            }
        };
        let request = HelperRequest::Exec(ExecRequest {
            container_id: self.id.clone(),
            exec_id: exec.exec_id.clone(),
            state_root: self.state_root.clone(),
            process: exec.spec.clone(),
            stdio: process.stdio.clone(),
            console_socket: console_socket.as_ref().map(|s| s.path().to_path_buf()),
            debug,
        });
        let adoption = reaper.expect_adoption();
        let started = helpers.run(&request).and_then(|(pid, kind)| {
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
                            warn!(id = self.id.as_str(); "{}: SIGKILL: {kill}", process.name);
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
                process.set_exited(UNKNOWN_EXIT_STATUS);
                return Err(e.into());
            }
        };
        let _ = exec.kind.set(kind);
        let watched = Arc::clone(exec);
        let on_exit: crate::reaper::OnExit = Box::new(move |exit_status| {
            if watched.process.set_exited(exit_status) {
                on_exit(&watched);
            }
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
    pub fn delete_exec(&self, exec_id: &str) -> Result<(u32, SystemTime), ContainerError> {
        let exec = self.exec(exec_id)?;
        let process = &exec.process;
        let never_started = {
            let status = process.status();
            status.check_delete(&process.name)?;
            *status == Status::Created
        };
        if never_started {
            process.set_exited(UNKNOWN_EXIT_STATUS);
        }
        process.release_stdio();
        self.execs.lock().unwrap().remove(exec_id);
        Ok(process.wait())
    }
}
