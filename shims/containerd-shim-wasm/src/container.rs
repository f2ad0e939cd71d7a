//! One container of the shim: its init process, state machine, stdio, rootfs and cgroup.
//! Each Task verb that concerns a container has its method here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use libcgroups::common::{CgroupConfig, CgroupManager};
use libcontainer::container::Container as LcContainer;
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal as ContainerSignal;
use log::warn;

use crate::console::{Console, ConsoleSocket};
use crate::creator::{self, CreateRequest, HelperRequest};
use crate::exec::Exec;
use crate::process::Process;
use crate::reaper::{self, Reaper};
use crate::rootfs::{MountedRootfs, RootfsMount};
use crate::status::{IllegalTransition, Status};
use crate::stdio::{StdioHolder, StdioPaths};
use crate::workload::Kind;

/// How long `delete` waits for a created-but-never-started process to die after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// Why a container verb failed; the task service maps each to a ttrpc code.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("container {0} is already deleted")]
    Deleted(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

/// Everything needed to create a container.
pub struct Spawn {
    pub id: String,
    pub bundle: PathBuf,
    pub stdio: StdioPaths,
    pub terminal: bool,
    /// Where the helper mounts `rootfs_mounts`, for the unmount at delete.
    pub rootfs: Option<MountedRootfs>,
    pub rootfs_mounts: Vec<RootfsMount>,
    pub state_root: PathBuf,
    pub systemd_cgroup: bool,
    pub debug: bool,
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub kind: Kind,
    /// The init process.
    pub init: Process,
    pub(crate) state_root: PathBuf,
    rootfs: Mutex<Option<MountedRootfs>>,
    /// Exec processes by exec id, from `Exec` until their delete.
    pub(crate) execs: Mutex<HashMap<String, Arc<Exec>>>,
    /// Held for the whole of a delete, so concurrent deletes run one after the other and
    /// the later ones find the container gone.
    deleted: Mutex<bool>,
}

impl Container {
    /// Creates the container through the helper process and watches its init process.
    /// `on_exit` runs once, after the status has become stopped. On error nothing is left.
    pub fn create(
        spawn: Spawn,
        helpers: &creator::Helpers,
        reaper: &Reaper,
        on_exit: impl FnOnce(&Container) + Send + 'static,
    ) -> anyhow::Result<Arc<Container>> {
        let held = match StdioHolder::open(&spawn.stdio) {
            Ok(held) => held,
            Err(e) => {
                unmount(spawn.rootfs.as_ref(), &spawn.id);
                return Err(e.into());
            }
        };
        let name = format!("container {}", spawn.id);
        let console_socket = match spawn.terminal.then(ConsoleSocket::bind).transpose() {
            Ok(socket) => socket,
            Err(e) => {
                unmount(spawn.rootfs.as_ref(), &spawn.id);
                return Err(anyhow!("{name}: console socket: {e}"));
            }
        };
        let request = HelperRequest::Create(CreateRequest {
            id: spawn.id.clone(),
            bundle: spawn.bundle.clone(),
            rootfs: spawn.rootfs_mounts.clone(),
            state_root: spawn.state_root.clone(),
            systemd_cgroup: spawn.systemd_cgroup,
            stdio: spawn.stdio.clone(),
            console_socket: console_socket.as_ref().map(|s| s.path().to_path_buf()),
            debug: spawn.debug,
        });
        let created = helpers.run(&request).and_then(|(pid, kind)| {
            let pidfd = reaper::pidfd_open(pid)
                .with_context(|| format!("{name} lost its init process {pid} during create"))?;
            let watch_fd = pidfd.try_clone().context("duplicate the pidfd")?;
            let console = console_socket
                .as_ref()
                .map(|socket| connect_console(socket, &spawn.stdio, &name))
                .transpose()?;
            Ok((pid, kind, pidfd, watch_fd, console))
        });
        let (pid, kind, pidfd, watch_fd, console) = match created {
            Ok(created) => created,
            Err(e) => {
                remove_state(&spawn.state_root, &spawn.id);
                unmount(spawn.rootfs.as_ref(), &spawn.id);
                return Err(e);
            }
        };
        let init = Process::new(
            spawn.id.clone(),
            name,
            spawn.id.clone(),
            spawn.stdio,
            spawn.terminal,
            held,
        );
        init.set_pid(pid, Some(pidfd));
        if let Some(console) = console {
            init.set_console(console);
        }
        let container = Arc::new(Container {
            id: spawn.id,
            bundle: spawn.bundle,
            kind,
            init,
            state_root: spawn.state_root,
            rootfs: Mutex::new(spawn.rootfs),
            execs: Mutex::new(HashMap::new()),
            deleted: Mutex::new(false),
        });
        let watched = Arc::clone(&container);
        reaper.watch(
            pid,
            watch_fd,
            Box::new(move |exit_status| {
                if watched.init.set_exited(exit_status) {
                    on_exit(&watched);
                }
            }),
        );
        Ok(container)
    }

    /// created -> running. `announce` runs under the status lock once the workload runs.
    pub fn start(&self, announce: impl FnOnce(&Container)) -> Result<i32, ContainerError> {
        // libcontainer's start chdirs the whole shim process (see cwd.rs).
        self.transition(
            "start",
            Status::start,
            |c| crate::cwd::serialized(|| c.start()),
            announce,
        )?;
        Ok(self.init.pid())
    }

    /// running -> paused, through the cgroup freezer. `announce` runs under the status lock.
    pub fn pause(&self, announce: impl FnOnce(&Container)) -> Result<(), ContainerError> {
        self.transition("pause", Status::pause, LcContainer::pause, announce)
    }

    /// paused -> running. `announce` runs under the status lock.
    pub fn resume(&self, announce: impl FnOnce(&Container)) -> Result<(), ContainerError> {
        self.transition("resume", Status::resume, LcContainer::resume, announce)
    }

    /// Moves the status with `next`, has libcontainer `act` on it, and puts the status back if
    /// that fails. The status lock is held throughout, so an exit cannot come in between and
    /// the event `announce` sends precedes the exit event.
    fn transition(
        &self,
        verb: &str,
        next: fn(&mut Status, &str) -> Result<(), IllegalTransition>,
        act: fn(&mut LcContainer) -> Result<(), LibcontainerError>,
        announce: impl FnOnce(&Container),
    ) -> Result<(), ContainerError> {
        let mut status = self.init.status();
        let before = *status;
        next(&mut status, &self.init.name)?;
        let done = self
            .libcontainer()
            .and_then(|mut c| act(&mut c).map_err(|e| anyhow!(e)))
            .with_context(|| format!("{verb} container {}", self.id));
        if let Err(e) = done {
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
        let options = libcgroups::common::ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        self.with_state(|container| {
            self.cgroup_of(&container)?
                .apply(&options)
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("update the resources of container {}", self.id))
        })
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
        self.with_state(|mut container| {
            if all {
                let signal = ContainerSignal::try_from(signal)
                    .map_err(|e| anyhow!("signal {signal}: {e}"))?;
                container
                    .kill(signal, true)
                    .with_context(|| format!("signal every process of container {}", self.id))?;
            } else {
                self.init.signal(signal)?;
            }
            if thaw {
                container
                    .resume()
                    .map_err(|e| anyhow!(e))
                    .with_context(|| {
                        format!("thaw container {} to let SIGKILL through", self.id)
                    })?;
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
        let mut container = self.libcontainer()?;
        container
            .delete(true)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("delete container {} (cgroup and state)", self.id))?;
        if let Some(rootfs) = self.rootfs.lock().unwrap().take() {
            rootfs.unmount()?;
        }
        self.init.release_stdio();
        // The processes died with the container; their FIFO holders go with them.
        for exec in self.execs.lock().unwrap().drain().map(|(_, exec)| exec) {
            exec.process.release_stdio();
        }
        *deleted = true;
        Ok(self.init.wait())
    }

    /// The pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<u32>, ContainerError> {
        self.with_state(|container| {
            let pids = self
                .cgroup_of(&container)?
                .get_all_pids()
                .with_context(|| format!("list the processes of container {}", self.id))?;
            Ok(pids.into_iter().map(|p| p.as_raw() as u32).collect())
        })
    }

    /// The container's cgroup statistics.
    pub fn stats(&self) -> Result<libcgroups::stats::Stats, ContainerError> {
        self.with_state(|container| {
            self.cgroup_of(&container)?
                .stats()
                .map_err(|e| anyhow!("{e}"))
                .with_context(|| format!("read the cgroup statistics of container {}", self.id))
        })
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
        use_state: impl FnOnce(LcContainer) -> anyhow::Result<T>,
    ) -> Result<T, ContainerError> {
        let _not_deleted = self.not_deleted()?;
        Ok(use_state(self.libcontainer()?)?)
    }

    fn libcontainer(&self) -> anyhow::Result<LcContainer> {
        let dir = self.state_root.join(&self.id);
        libcontainer::container::Container::load(dir.clone()).with_context(|| {
            format!(
                "load the state of container {} from {}",
                self.id,
                dir.display()
            )
        })
    }

    fn cgroup_of(
        &self,
        container: &LcContainer,
    ) -> anyhow::Result<libcgroups::common::AnyCgroupManager> {
        let config = container
            .spec()
            .context("read the container's saved config")?;
        libcgroups::common::create_cgroup_manager(CgroupConfig {
            cgroup_path: config.cgroup_path,
            systemd_cgroup: container.systemd(),
            container_name: self.id.clone(),
        })
        .with_context(|| format!("open the cgroup of container {}", self.id))
    }
}

/// The terminal the process's init sent to `socket`, connected to the task's stdio.
pub fn connect_console(
    socket: &ConsoleSocket,
    stdio: &StdioPaths,
    name: &str,
) -> anyhow::Result<Console> {
    let master = socket
        .receive_master()
        .with_context(|| format!("{name}: terminal"))?;
    Console::start(master, stdio, name).with_context(|| format!("{name}: connect the terminal"))
}

fn unmount(rootfs: Option<&MountedRootfs>, id: &str) {
    if let Some(Err(e)) = rootfs.map(MountedRootfs::unmount) {
        warn!(id; "container {id}: {e:#}");
    }
}

/// Removes a container's libcontainer state (cgroup, state directory) if any is left, e.g.
/// after a failed create or a crashed shim.
pub fn remove_state(state_root: &std::path::Path, id: &str) {
    let dir = state_root.join(id);
    if !dir.exists() {
        return;
    }
    let deleted = libcontainer::container::Container::load(dir.clone())
        .map_err(anyhow::Error::from)
        .and_then(|mut c| c.delete(true).map_err(anyhow::Error::from));
    if let Err(e) = deleted {
        warn!(id; "remove the state of container {id}: {e:#}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
