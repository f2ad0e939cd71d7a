//! What the Task service needs from outside the shim process: a helper that starts a
//! container's process, and `libcontainer`'s operations on a container's state and cgroup.
//! [`Runtime`] is that seam; [`Libcontainer`] is the real one, and the Task service's unit
//! tests put a fake in its place.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager};
use libcontainer::container::Container as LcContainer;
use libcontainer::signal::Signal as ContainerSignal;

use crate::request::{HelperRequest, Kind};
use crate::shim::helpers::Helpers;

/// A container as `libcontainer` keeps it: its state lives in `<state_root>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRef {
    pub state_root: PathBuf,
    pub id: String,
}

/// The operations of the outside world the Task service uses; each error names the container.
pub trait Runtime: Send + Sync {
    /// Runs `request` in a helper process: the pid of the process it started (a child of the
    /// shim by now) and what that process runs.
    fn run_helper(&self, request: &HelperRequest) -> anyhow::Result<(i32, Kind)>;
    /// Lets a created container's init process run its workload.
    fn start(&self, container: &StateRef) -> anyhow::Result<()>;
    /// Freezes every process of the container.
    fn pause(&self, container: &StateRef) -> anyhow::Result<()>;
    /// Thaws them.
    fn resume(&self, container: &StateRef) -> anyhow::Result<()>;
    /// Sends `signal` to every process of the container.
    fn kill_all(&self, container: &StateRef, signal: i32) -> anyhow::Result<()>;
    /// Applies new resource limits to the container's cgroup.
    fn update(
        &self,
        container: &StateRef,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> anyhow::Result<()>;
    /// The pids in the container's cgroup.
    fn pids(&self, container: &StateRef) -> anyhow::Result<Vec<u32>>;
    /// The container's cgroup statistics.
    fn stats(&self, container: &StateRef) -> anyhow::Result<libcgroups::stats::Stats>;
    /// Removes the container's cgroup and state (its processes are gone).
    fn delete(&self, container: &StateRef) -> anyhow::Result<()>;
    /// Removes whatever state a failed create left, if any; never fails.
    fn remove_leftovers(&self, container: &StateRef);
    /// Writes the Wasm layers of container `id`'s image (in `namespace`) into `rootfs_dir`;
    /// their paths in the container (see `wasm_layers.rs`).
    fn wasm_modules(
        &self,
        namespace: &str,
        id: &str,
        rootfs_dir: &Path,
    ) -> anyhow::Result<Vec<String>>;
}

/// The real [`Runtime`]: helper processes, and `libcontainer` on the state they made.
pub struct Libcontainer {
    pub helpers: Helpers,
    /// containerd's gRPC socket, for the content of Wasm OCI artifacts.
    pub containerd_address: String,
}

impl Runtime for Libcontainer {
    fn run_helper(&self, request: &HelperRequest) -> anyhow::Result<(i32, Kind)> {
        self.helpers.run(request)
    }

    fn start(&self, container: &StateRef) -> anyhow::Result<()> {
        // libcontainer's start chdirs the whole shim process (see cwd.rs).
        crate::shim::cwd::serialized(|| load(container)?.start().map_err(|e| anyhow!(e)))
            .with_context(|| format!("start container {}", container.id))
    }

    fn pause(&self, container: &StateRef) -> anyhow::Result<()> {
        load(container)?
            .pause()
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("pause container {}", container.id))
    }

    fn resume(&self, container: &StateRef) -> anyhow::Result<()> {
        load(container)?
            .resume()
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("resume container {}", container.id))
    }

    fn kill_all(&self, container: &StateRef, signal: i32) -> anyhow::Result<()> {
        let signal =
            ContainerSignal::try_from(signal).map_err(|e| anyhow!("signal {signal}: {e}"))?;
        load(container)?
            .kill(signal, true)
            .with_context(|| format!("signal every process of container {}", container.id))
    }

    fn update(
        &self,
        container: &StateRef,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> anyhow::Result<()> {
        let options = libcgroups::common::ControllerOpt {
            resources,
            disable_oom_killer: false,
            oom_score_adj: None,
            freezer_state: None,
        };
        cgroup_of(container)?
            .apply(&options)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("update the resources of container {}", container.id))
    }

    fn pids(&self, container: &StateRef) -> anyhow::Result<Vec<u32>> {
        let pids = cgroup_of(container)?
            .get_all_pids()
            .with_context(|| format!("list the processes of container {}", container.id))?;
        Ok(pids.into_iter().map(|p| p.as_raw() as u32).collect())
    }

    fn stats(&self, container: &StateRef) -> anyhow::Result<libcgroups::stats::Stats> {
        cgroup_of(container)?
            .stats()
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("read the cgroup statistics of container {}", container.id))
    }

    fn delete(&self, container: &StateRef) -> anyhow::Result<()> {
        load(container)?
            .delete(true)
            .map_err(|e| anyhow!(e))
            .with_context(|| format!("delete container {} (cgroup and state)", container.id))
    }

    fn remove_leftovers(&self, container: &StateRef) {
        crate::container_state::remove_state(&container.state_root, &container.id);
    }

    fn wasm_modules(
        &self,
        namespace: &str,
        id: &str,
        rootfs_dir: &Path,
    ) -> anyhow::Result<Vec<String>> {
        crate::shim::wasm_layers::write_modules(&self.containerd_address, namespace, id, rootfs_dir)
    }
}

fn load(container: &StateRef) -> anyhow::Result<LcContainer> {
    let dir = container.state_root.join(&container.id);
    LcContainer::load(dir.clone()).with_context(|| {
        format!(
            "load the state of container {} from {}",
            container.id,
            dir.display()
        )
    })
}

fn cgroup_of(container: &StateRef) -> anyhow::Result<AnyCgroupManager> {
    let state = load(container)?;
    let config = state.spec().context("read the container's saved config")?;
    libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: state.systemd(),
        container_name: container.id.clone(),
    })
    .with_context(|| format!("open the cgroup of container {}", container.id))
}

impl StateRef {
    pub fn new(state_root: &Path, id: &str) -> Self {
        Self {
            state_root: state_root.to_path_buf(),
            id: id.to_string(),
        }
    }
}
