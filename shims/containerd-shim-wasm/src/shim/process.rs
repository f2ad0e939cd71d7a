//! One process of a task, a container's init or an exec process: its pid and pidfd, status,
//! stdio and exit. Both kinds are started, signalled, waited for and report their exit
//! the same way; what differs (how they are created, what delete removes) lives in
//! `container.rs` and `exec.rs`.

use std::os::fd::OwnedFd;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::anyhow;
use log::info;

use crate::shim::console::Console;

/// How long an exit waits for the terminal's output to be copied.
const CONSOLE_DRAIN: Duration = Duration::from_secs(2);
use crate::shim::status::{IllegalTransition, Status};
use crate::stdio::{StdioHolder, StdioPaths};

pub struct Process {
    /// The container the process belongs to (the `id` of its log lines).
    pub container_id: String,
    /// For messages: `container c1` or `exec process e1 of container c1`.
    pub name: String,
    /// The id containerd knows the process by in events: the container id for an init
    /// process, the exec id for an exec process.
    pub event_id: String,
    pub stdio: StdioPaths,
    pub terminal: bool,
    /// Set once the process exists: at create for an init process, at start for an exec.
    /// The pidfd is opened before the workload runs, so signals never reach a recycled pid.
    started: OnceLock<(i32, Option<OwnedFd>)>,
    /// The shim's writers on the FIFOs.
    held: Mutex<StdioHolder>,
    /// The shim's end of the terminal, for a process with `terminal`.
    console: OnceLock<Console>,
    status: Mutex<Status>,
    exited: Condvar,
}

impl Process {
    pub fn new(
        container_id: String,
        name: String,
        event_id: String,
        stdio: StdioPaths,
        terminal: bool,
        held: StdioHolder,
    ) -> Self {
        Self {
            container_id,
            name,
            event_id,
            stdio,
            terminal,
            started: OnceLock::new(),
            held: Mutex::new(held),
            console: OnceLock::new(),
            status: Mutex::new(Status::Created),
            exited: Condvar::new(),
        }
    }

    /// Records the pid and the pidfd (none when the process had already exited).
    pub fn set_pid(&self, pid: i32, pidfd: Option<OwnedFd>) {
        if self.started.set((pid, pidfd)).is_err() {
            log::warn!(id = self.container_id.as_str(); "{}: pid set twice", self.name);
        }
    }

    /// The pid, 0 before the process exists (as containerd expects).
    pub fn pid(&self) -> i32 {
        self.started.get().map_or(0, |(pid, _)| *pid)
    }

    /// The status, locked: callers that publish an event while holding it keep the events
    /// in the order of the transitions.
    pub fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap()
    }

    /// Connects the process's terminal to its stdio.
    pub fn set_console(&self, console: Console) {
        let _ = self.console.set(console);
    }

    /// Sets the terminal's size (`ResizePty`).
    pub fn resize_console(&self, width: u16, height: u16) -> anyhow::Result<()> {
        let console = self
            .console
            .get()
            .ok_or_else(|| anyhow!("{} has no terminal", self.name))?;
        console
            .resize(width, height)
            .map_err(|e| anyhow!("resize the terminal of {}: {e}", self.name))
    }

    /// Records the exit, the first time only, and then has `announce` send its event (with the
    /// status and time) before any waiter wakes: a client that saw Wait return and deletes the
    /// process at once finds `/tasks/exit` queued before `/tasks/delete`. With a terminal, the
    /// output the process left in it reaches stdout first, so a client that saw the exit has
    /// it all.
    pub fn set_exited(&self, exit_status: i32, announce: impl FnOnce(u32, SystemTime)) {
        if let Some(console) = self.console.get() {
            console.drain(CONSOLE_DRAIN);
        }
        let mut status = self.status();
        let exited_at = SystemTime::now();
        if status.exit(exit_status as u32, exited_at) {
            self.held.lock().unwrap().release_outputs();
            info!(id = self.container_id.as_str(); "{} (pid {}) exited with status {exit_status}", self.name, self.pid());
            announce(exit_status as u32, exited_at);
        }
        self.exited.notify_all();
    }

    /// Sends `signal` through the pidfd, if the process may still be signalled.
    pub fn signal(&self, signal: i32) -> anyhow::Result<()> {
        let pidfd = match self.started.get() {
            Some((_, Some(pidfd))) => pidfd,
            // Started and already gone before it could be watched.
            Some((_, None)) => return Ok(()),
            None => return Err(anyhow!("{} has not been started", self.name)),
        };
        crate::pidfd::pidfd_signal(pidfd, signal)
            .map_err(|e| anyhow!("signal {signal} to {} (pid {}): {e}", self.name, self.pid()))
    }

    /// The statuses a signal may go to; otherwise an error containerd reads as "gone".
    pub fn check_kill(&self) -> Result<(), IllegalTransition> {
        self.status().check_kill(&self.name)
    }

    /// Blocks until the process has exited; returns its status and time.
    pub fn wait(&self) -> (u32, SystemTime) {
        let mut status = self.status();
        loop {
            if let Status::Stopped {
                exit_status,
                exited_at,
            } = *status
            {
                return (exit_status, exited_at);
            }
            status = self.exited.wait(status).unwrap();
        }
    }

    /// Waits at most `timeout` for the exit; false if the process is still there.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let status = self.status();
        let (status, _) = self
            .exited
            .wait_timeout_while(status, timeout, |s| !matches!(s, Status::Stopped { .. }))
            .unwrap();
        matches!(*status, Status::Stopped { .. })
    }

    /// Lets the process see EOF on stdin once the client has closed its end.
    pub fn close_stdin(&self) {
        self.held.lock().unwrap().close_stdin();
    }

    /// At delete: lets go of every FIFO.
    pub fn release_stdio(&self) {
        *self.held.lock().unwrap() = StdioHolder::default();
    }
}
