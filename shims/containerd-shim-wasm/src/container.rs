//! One container of the shim: its init process, state machine, stdio, rootfs and cgroup.
//! Each Task verb that concerns a container has its method here.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use libcgroups::common::{CgroupConfig, CgroupManager};
use libcontainer::container::Container as LcContainer;
use libcontainer::error::LibcontainerError;
use libcontainer::signal::Signal as ContainerSignal;
use log::{info, warn};

use crate::creator::{self, CreateRequest};
use crate::reaper::{self, Reaper};
use crate::rootfs::{MountedRootfs, RootfsMount};
use crate::status::{IllegalTransition, Status};
use crate::stdio::{StdinHolder, StdioPaths};
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
    pub pid: i32,
    pub kind: Kind,
    pub stdio: StdioPaths,
    pub terminal: bool,
    state_root: PathBuf,
    rootfs: Mutex<Option<MountedRootfs>>,
    stdin: Mutex<StdinHolder>,
    /// Opened at create, before the workload starts: signals never reach a recycled pid.
    pidfd: OwnedFd,
    status: Mutex<Status>,
    exited: Condvar,
    /// Held for the whole of a delete, so concurrent deletes run one after the other and
    /// the later ones find the container gone.
    deleted: Mutex<bool>,
}

impl Container {
    /// Creates the container through the helper process and watches its init process.
    /// `on_exit` runs once, after the status has become stopped. On error nothing is left.
    pub fn create(
        spawn: Spawn,
        shim_log: &std::fs::File,
        reaper: &Reaper,
        on_exit: impl FnOnce(&Container) + Send + 'static,
    ) -> anyhow::Result<Arc<Container>> {
        let stdin = match StdinHolder::open(spawn.stdio.stdin.as_deref()) {
            Ok(stdin) => stdin,
            Err(e) => {
                unmount(spawn.rootfs.as_ref(), &spawn.id);
                return Err(e.into());
            }
        };
        let request = CreateRequest {
            id: spawn.id.clone(),
            bundle: spawn.bundle.clone(),
            rootfs: spawn.rootfs_mounts.clone(),
            state_root: spawn.state_root.clone(),
            systemd_cgroup: spawn.systemd_cgroup,
            stdio: spawn.stdio.clone(),
            debug: spawn.debug,
        };
        let created = creator::create_in_helper(&request, shim_log).and_then(|(pid, kind)| {
            let pidfd = reaper::pidfd_open(pid).with_context(|| {
                format!(
                    "container {} lost its init process {pid} during create",
                    spawn.id
                )
            })?;
            let watch_fd = pidfd.try_clone().context("duplicate the pidfd")?;
            Ok((pid, kind, pidfd, watch_fd))
        });
        let (pid, kind, pidfd, watch_fd) = match created {
            Ok(created) => created,
            Err(e) => {
                remove_state(&spawn.state_root, &spawn.id);
                unmount(spawn.rootfs.as_ref(), &spawn.id);
                return Err(e);
            }
        };
        let container = Arc::new(Container {
            id: spawn.id,
            bundle: spawn.bundle,
            pid,
            kind,
            stdio: spawn.stdio,
            terminal: spawn.terminal,
            state_root: spawn.state_root,
            rootfs: Mutex::new(spawn.rootfs),
            stdin: Mutex::new(stdin),
            pidfd,
            status: Mutex::new(Status::Created),
            exited: Condvar::new(),
            deleted: Mutex::new(false),
        });
        let watched = Arc::clone(&container);
        reaper.watch(
            pid,
            watch_fd,
            Box::new(move |exit_status| {
                if watched.set_exited(exit_status) {
                    on_exit(&watched);
                }
            }),
        );
        Ok(container)
    }

    /// Records the exit; true the first (and only) time.
    fn set_exited(&self, exit_status: i32) -> bool {
        let mut status = self.status();
        let first = status.exit(exit_status as u32, SystemTime::now());
        if first {
            info!(id = self.id.as_str(); "container {} (pid {}) exited with status {exit_status}", self.id, self.pid);
        }
        self.exited.notify_all();
        first
    }

    /// The status, locked: callers that publish an event while holding it keep the events
    /// in the order of the transitions.
    pub fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap()
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
        Ok(self.pid)
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
        let mut status = self.status();
        let before = *status;
        next(&mut status, &self.id)?;
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
    pub fn update(&self, resources: &oci_spec::runtime::LinuxResources) -> anyhow::Result<()> {
        let options = libcgroups::common::ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        self.cgroup()?
            .apply(&options)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("update the resources of container {}", self.id))
    }

    /// Sends `signal` to the init process, or with `all` to every process of the container.
    pub fn kill(&self, signal: u32, all: bool) -> Result<(), ContainerError> {
        let status = self.status();
        if !all {
            status.check_kill(&self.id)?;
        }
        // A frozen process only dies once thawed.
        let thaw = *status == Status::Paused && signal == libc::SIGKILL as u32;
        drop(status);
        let signal = i32::try_from(signal).map_err(|_| anyhow!("invalid signal {signal}"))?;
        if all {
            let signal =
                ContainerSignal::try_from(signal).map_err(|e| anyhow!("signal {signal}: {e}"))?;
            let mut container = self.libcontainer()?;
            container
                .kill(signal, true)
                .with_context(|| format!("signal every process of container {}", self.id))?;
        } else {
            reaper::pidfd_signal(&self.pidfd, signal).with_context(|| {
                format!(
                    "signal {signal} to container {} (pid {})",
                    self.id, self.pid
                )
            })?;
        }
        if thaw {
            self.libcontainer()
                .and_then(|mut c| c.resume().map_err(|e| anyhow!(e)))
                .with_context(|| format!("thaw container {} to let SIGKILL through", self.id))?;
        }
        Ok(())
    }

    /// Blocks until the init process has exited; returns its status and time.
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

    /// Lets the module see EOF on stdin once the client has closed its end.
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap().close();
    }

    /// Removes everything the container had: process, cgroup, state, rootfs mount, stdin.
    pub fn delete(&self) -> Result<(u32, SystemTime), ContainerError> {
        let mut deleted = self.deleted.lock().unwrap();
        if *deleted {
            return Err(ContainerError::Deleted(self.id.clone()));
        }
        let created = {
            let status = self.status();
            status.check_delete(&self.id)?;
            *status == Status::Created
        };
        if created {
            // Never started: its init still waits for `start`.
            if let Err(e) = reaper::pidfd_signal(&self.pidfd, libc::SIGKILL)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                warn!(id = self.id.as_str(); "SIGKILL to container {} (pid {}): {e}", self.id, self.pid);
            }
            self.wait_exit(KILL_GRACE)?;
        }
        let mut container = self.libcontainer()?;
        container
            .delete(true)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("delete container {} (cgroup and state)", self.id))?;
        if let Some(rootfs) = self.rootfs.lock().unwrap().take() {
            rootfs.unmount()?;
        }
        self.close_stdin();
        *deleted = true;
        Ok(self.wait())
    }

    fn wait_exit(&self, timeout: Duration) -> anyhow::Result<()> {
        let status = self.status();
        let (status, _) = self
            .exited
            .wait_timeout_while(status, timeout, |s| !matches!(s, Status::Stopped { .. }))
            .unwrap();
        if !matches!(*status, Status::Stopped { .. }) {
            return Err(anyhow!(
                "container {} (pid {}) did not die after SIGKILL",
                self.id,
                self.pid
            ));
        }
        Ok(())
    }

    /// The pids of every process in the container's cgroup.
    pub fn pids(&self) -> anyhow::Result<Vec<u32>> {
        let pids = self
            .cgroup()?
            .get_all_pids()
            .with_context(|| format!("list the processes of container {}", self.id))?;
        Ok(pids.into_iter().map(|p| p.as_raw() as u32).collect())
    }

    /// The container's cgroup statistics.
    pub fn stats(&self) -> anyhow::Result<libcgroups::stats::Stats> {
        self.cgroup()?
            .stats()
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("read the cgroup statistics of container {}", self.id))
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

    fn cgroup(&self) -> anyhow::Result<libcgroups::common::AnyCgroupManager> {
        let container = self.libcontainer()?;
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
