//! A container's `libcontainer` state (its state directory and cgroup) where nobody holds it:
//! after a failed create (the shim), under the id of a new container (the helper, after a
//! crashed shim), and after a dead shim (`delete`).

use log::warn;

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
