//! One container of the shim: its init process, state machine, stdio, rootfs and cgroup.
//! Each Task verb that concerns a container has its method here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use log::warn;

use crate::pidfd::pidfd_open;
use crate::request::{CreateRequest, HelperRequest, Kind};
use crate::shim::console::{ConsoleSocket, connect_console};
use crate::shim::error::ContainerError;
use crate::shim::exec::{Exec, Execs};
use crate::shim::process::Process;
use crate::shim::reaper::Reaper;
use crate::shim::rootfs::{self, MountedRootfs};
use crate::shim::runtime::{Runtime, StateRef};
use crate::shim::status::{IllegalTransition, Status};
use crate::stdio::{StdioHolder, StdioPaths};

/// How long `delete` waits for a created-but-never-started process to die after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(10);

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub kind: Kind,
    /// The init process.
    pub init: Process,
    /// Where `libcontainer` keeps the container.
    pub(crate) state: StateRef,
    pub(crate) runtime: Arc<dyn Runtime>,
    rootfs: Mutex<Option<MountedRootfs>>,
    /// Its exec processes.
    pub(crate) execs: Execs,
    /// Held for the whole of a delete, so concurrent deletes run one after the other and
    /// the later ones find the container gone.
    deleted: Mutex<bool>,
}

impl Container {
    /// Creates the container through the helper process and watches its init process; with
    /// `terminal`, its stdio is a terminal the init process makes. `on_exit` runs once, after
    /// the status has become stopped. On error nothing is left.
    pub fn create(
        mut request: CreateRequest,
        terminal: bool,
        runtime: &Arc<dyn Runtime>,
        reaper: &Reaper,
        on_exit: impl FnOnce(&Container, u32, SystemTime) + Send + 'static,
    ) -> anyhow::Result<Arc<Container>> {
        let rootfs = rootfs::planned(&request.bundle, &request.rootfs);
        let held = match StdioHolder::open(&request.stdio) {
            Ok(held) => held,
            Err(e) => {
                unmount(rootfs.as_ref(), &request.id);
                return Err(e.into());
            }
        };
        let name = format!("container {}", request.id);
        let console_socket = match terminal.then(ConsoleSocket::bind).transpose() {
            Ok(socket) => socket,
            Err(e) => {
                unmount(rootfs.as_ref(), &request.id);
                return Err(anyhow!("{name}: console socket: {e}"));
            }
        };
        request.console_socket = console_socket.as_ref().map(|s| s.path().to_path_buf());
        // What the container keeps of the request; the request itself goes to the helper.
        let (id, bundle, state_root, stdio) = (
            request.id.clone(),
            request.bundle.clone(),
            request.state_root.clone(),
            request.stdio.clone(),
        );
        let options = request.options.clone();
        let created = runtime
            .run_helper(&HelperRequest::Create(request))
            .and_then(|(pid, kind)| {
                let pidfd = pidfd_open(pid)
                    .with_context(|| format!("{name} lost its init process {pid} during create"))?;
                let watch_fd = pidfd.try_clone().context("duplicate the pidfd")?;
                let console = console_socket
                    .as_ref()
                    .map(|socket| connect_console(socket, &stdio, &name))
                    .transpose()?;
                Ok((pid, kind, pidfd, watch_fd, console))
            });
        let (pid, kind, pidfd, watch_fd, console) = match created {
            Ok(created) => created,
            Err(e) => {
                runtime.remove_leftovers(&StateRef::new(&state_root, &id));
                unmount(rootfs.as_ref(), &id);
                return Err(e);
            }
        };
        let init = Process::new(id.clone(), name, id.clone(), stdio, terminal, held);
        init.set_pid(pid, Some(pidfd));
        if let Some(console) = console {
            init.set_console(console);
        }
        let container = Arc::new(Container {
            id: id.clone(),
            bundle,
            kind,
            init,
            state: StateRef::new(&state_root, &id),
            runtime: Arc::clone(runtime),
            rootfs: Mutex::new(rootfs),
            execs: Execs::new(&id, options),
            deleted: Mutex::new(false),
        });
        let watched = Arc::clone(&container);
        reaper.watch(
            pid,
            watch_fd,
            Box::new(move |exit_status| {
                watched
                    .init
                    .set_exited(exit_status, |status, at| on_exit(&watched, status, at));
            }),
        );
        Ok(container)
    }

    /// created -> running. `announce` runs under the status lock once the workload runs.
    pub fn start(&self, announce: impl FnOnce(&Container)) -> Result<i32, ContainerError> {
        self.transition(Status::start, |r, c| r.start(c), announce)?;
        Ok(self.init.pid())
    }

    /// running -> paused, through the cgroup freezer. `announce` runs under the status lock.
    pub fn pause(&self, announce: impl FnOnce(&Container)) -> Result<(), ContainerError> {
        self.transition(Status::pause, |r, c| r.pause(c), announce)
    }

    /// paused -> running. `announce` runs under the status lock.
    pub fn resume(&self, announce: impl FnOnce(&Container)) -> Result<(), ContainerError> {
        self.transition(Status::resume, |r, c| r.resume(c), announce)
    }

    /// Moves the status with `next`, has the runtime `act` on the container, and puts the
    /// status back if that fails. The status lock is held throughout, so an exit cannot come in
    /// between and the event `announce` sends precedes the exit event.
    fn transition(
        &self,
        next: fn(&mut Status, &str) -> Result<(), IllegalTransition>,
        act: impl FnOnce(&dyn Runtime, &StateRef) -> anyhow::Result<()>,
        announce: impl FnOnce(&Container),
    ) -> Result<(), ContainerError> {
        let mut status = self.init.status();
        let before = *status;
        next(&mut status, &self.init.name)?;
        if let Err(e) = act(&*self.runtime, &self.state) {
            *status = before;
            return Err(e.into());
        }
        announce(self);
        Ok(())
    }

    /// Applies new resource limits (memory, CPU, pids, ...) to the container's cgroup.
    pub fn update(
        &self,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), ContainerError> {
        self.with_state(|r, c| r.update(c, resources))
    }

    /// Sends `signal` to the init process, or with `all` to every process of the container.
    pub fn kill(&self, signal: u32, all: bool) -> Result<(), ContainerError> {
        let status = self.init.status();
        if !all {
            status.check_kill(&self.init.name)?;
        }
        // A frozen process only dies once thawed.
        let thaw = *status == Status::Paused && signal == libc::SIGKILL as u32;
        drop(status);
        let signal = i32::try_from(signal).map_err(|_| anyhow!("invalid signal {signal}"))?;
        if !all && !thaw {
            self.init.signal(signal)?;
            return Ok(());
        }
        self.with_state(|runtime, state| {
            if all {
                runtime.kill_all(state, signal)?;
            } else {
                self.init.signal(signal)?;
            }
            if thaw {
                runtime
                    .resume(state)
                    .context("thaw the container to let SIGKILL through")?;
            }
            Ok(())
        })
    }

    /// Removes everything the container had: process, cgroup, state, rootfs mount, stdio.
    pub fn delete(&self) -> Result<(u32, SystemTime), ContainerError> {
        let mut deleted = self.not_deleted()?;
        let created = {
            let status = self.init.status();
            status.check_delete(&self.init.name)?;
            *status == Status::Created
        };
        if created {
            // Never started: its init still waits for `start`.
            if let Err(e) = self.init.signal(libc::SIGKILL) {
                warn!(id = self.id.as_str(); "{e:#}");
            }
            if !self.init.wait_timeout(KILL_GRACE) {
                return Err(anyhow!(
                    "container {} (pid {}) did not die after SIGKILL",
                    self.id,
                    self.init.pid()
                )
                .into());
            }
        }
        self.runtime.delete(&self.state)?;
        if let Some(rootfs) = self.rootfs.lock().unwrap().take() {
            rootfs.unmount()?;
        }
        self.init.release_stdio();
        self.execs.release_all();
        *deleted = true;
        Ok(self.init.wait())
    }

    /// The pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<u32>, ContainerError> {
        self.with_state(|r, c| r.pids(c))
    }

    /// The container's cgroup statistics.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats, ContainerError> {
        self.with_state(|r, c| r.stats(c))
    }

    /// Records an exec process (Exec); it runs at [`Container::start_exec`].
    pub fn add_exec(
        &self,
        exec_id: &str,
        spec: serde_json::Value,
        stdio: StdioPaths,
        terminal: bool,
    ) -> Result<Arc<Exec>, ContainerError> {
        self.execs.add(&self.init, exec_id, spec, stdio, terminal)
    }

    /// One of its exec processes.
    pub fn exec(&self, exec_id: &str) -> Result<Arc<Exec>, ContainerError> {
        self.execs.get(exec_id)
    }

    /// Starts an exec process; see [`Execs::start`].
    pub fn start_exec(
        &self,
        exec: &Arc<Exec>,
        reaper: &Reaper,
        debug: bool,
        announce: impl FnOnce(&Exec),
        on_exit: impl FnOnce(&Exec, u32, SystemTime) + Send + 'static,
    ) -> Result<i32, ContainerError> {
        let runtime = &*self.runtime;
        let init = &self.init;
        let state = &self.state;
        self.execs
            .start(exec, init, state, runtime, reaper, debug, announce, on_exit)
    }

    /// Removes a stopped (or never started) exec process; returns its exit.
    pub fn delete_exec(&self, exec_id: &str) -> Result<(u32, SystemTime), ContainerError> {
        self.execs.delete(exec_id)
    }

    /// The delete lock, if the container is not deleted yet.
    fn not_deleted(&self) -> Result<MutexGuard<'_, bool>, ContainerError> {
        let deleted = self.deleted.lock().unwrap();
        if *deleted {
            return Err(ContainerError::Deleted(self.id.clone()));
        }
        Ok(deleted)
    }

    /// Runs `use_state` on the container's libcontainer state with delete held off: delete
    /// removes that state, and a verb that reads it (Kill of every process, Stats, Pids,
    /// Update) must not run into that halfway. runc's shim serializes its verbs with delete
    /// the same way. A verb after delete fails with [`ContainerError::Deleted`].
    fn with_state<T>(
        &self,
        use_state: impl FnOnce(&dyn Runtime, &StateRef) -> anyhow::Result<T>,
    ) -> Result<T, ContainerError> {
        let _not_deleted = self.not_deleted()?;
        Ok(use_state(&*self.runtime, &self.state)?)
    }
}

fn unmount(rootfs: Option<&MountedRootfs>, id: &str) {
    if let Some(Err(e)) = rootfs.map(MountedRootfs::unmount) {
        warn!(id; "container {id}: {e:#}");
    }
}
