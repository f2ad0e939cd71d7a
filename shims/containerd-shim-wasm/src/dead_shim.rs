//! What the `delete` sub-command cleans up after a shim that died (SIGKILL, a crash): the
//! container's processes, its cgroup and state, and the dead shim's socket.
//!
//! The processes were the dead shim's children and may still be exiting when `delete` runs.
//! libcgroups removes a cgroup with a short retry and gives up on the first controller that
//! is still busy, which left cgroups behind: so every process of the container is killed and
//! waited for before its cgroup is removed.

use std::path::Path;
use std::time::{Duration, Instant};

use libcgroups::common::{CgroupConfig, CgroupManager};
use log::warn;
use nix::sys::signal::{Signal, kill};

use crate::container_state::remove_state;

/// How long the processes of a dead shim's container may take to die after SIGKILL.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// Kills and waits for the processes of container `id`, then removes its cgroup and state.
pub fn remove_container(state_root: &Path, id: &str) {
    stop_processes(state_root, id);
    remove_state(state_root, id);
}

fn stop_processes(state_root: &Path, id: &str) {
    let dir = state_root.join(id);
    let Ok(container) = libcontainer::container::Container::load(dir) else {
        return;
    };
    let Ok(config) = container.spec() else {
        return;
    };
    let manager = match libcgroups::common::create_cgroup_manager(CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: id.to_string(),
    }) {
        Ok(manager) => manager,
        Err(e) => {
            warn!(id; "container {id}: open its cgroup: {e}");
            return;
        }
    };
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        let pids = manager.get_all_pids().unwrap_or_default();
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            warn!(id; "container {id}: processes {pids:?} still alive {EXIT_GRACE:?} after SIGKILL");
            return;
        }
        for pid in pids {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the socket of the dead shim that served container `id`: the crate removes it
/// when a shim exits normally, but a killed shim leaves it (runc's shim does too). The
/// socket is shared by a pod's containers, so it is removed only when nothing listens on it.
pub fn remove_socket(id: &str) {
    // `start` wrote the address into the bundle, where containerd runs `delete`.
    let Ok(address) = containerd_shim::util::read_address() else {
        return;
    };
    let path = address.strip_prefix("unix://").unwrap_or(&address);
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            if let Err(e) = std::fs::remove_file(path) {
                warn!(id; "container {id}: remove the dead shim's socket {path}: {e}");
            }
        }
        _ => {}
    }
}
