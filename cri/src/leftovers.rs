//! What a removed pod must not leave behind: its shim and every process, mounts (rootfs,
//! shm, the network namespace's bind mount), the network namespace, container cgroups, the
//! shim's socket and the state directories of the sandbox and its containers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shim_conformance::environment::containerd;
use shim_conformance::leftovers::{
    cgroup_roots, describe_process, find_named, mounts_left, shim_socket_in, shims_left, shims_of,
};
use shim_conformance::procfs::{self, ProcessId};

use crate::images::CRI_NAMESPACE;
use crate::pod::Pod;

/// How long the teardown may go on in the background after RemovePodSandbox answered
/// (the shim exits after answering containerd's Shutdown).
const SETTLE_TIME: Duration = Duration::from_secs(5);

/// A pod's processes and resources, recorded while it ran.
#[derive(Debug)]
pub struct PodFootprint {
    ids: Vec<String>,
    cgroup_parent: String,
    processes: Vec<ProcessId>,
    netns: PathBuf,
}

impl PodFootprint {
    /// Records pod `pod` with its containers `containers` now: the shim's process tree,
    /// every process in the pod's cgroup, and the network namespace CRI made.
    pub fn observe(pod: &mut Pod, containers: &[&str]) -> Result<Self> {
        let netns = network_namespace(pod)?;
        if !containerd().path(&netns).exists() {
            bail!(
                "the network namespace {} of running pod {} does not exist",
                netns.display(),
                pod.id
            );
        }
        let mut ids = vec![pod.id.clone()];
        ids.extend(containers.iter().map(|id| (*id).to_owned()));
        let cgroup_parent = pod.cgroup_parent().to_owned();
        let mut processes: Vec<ProcessId> = procfs::pids()
            .into_iter()
            .filter(|pid| in_cgroup(*pid, &cgroup_parent))
            .filter_map(procfs::alive)
            .collect();
        for shim in shims_of(&pod.id) {
            processes.extend(procfs::process_tree(shim));
        }
        processes.sort_by_key(|p| p.pid);
        processes.dedup();
        if processes.is_empty() {
            bail!("pod {} has no process to observe", pod.id);
        }
        let footprint = Self {
            ids,
            cgroup_parent,
            processes,
            netns,
        };
        // The checks must see the running pod, or their silence after removal means nothing.
        let present = footprint.leftovers();
        for kind in [
            "shim process",
            "mount",
            "network namespace",
            "container cgroup",
            "state",
        ] {
            if !present.iter().any(|l| l.starts_with(kind)) {
                bail!(
                    "the leftover checks see no {kind} of running pod {}: {present:#?}",
                    footprint.ids[0]
                );
            }
        }
        Ok(footprint)
    }

    /// Waits for the teardown to settle; fails with everything still there.
    pub fn expect_gone(&self) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIME;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "pod {} left behind, {SETTLE_TIME:?} after RemovePodSandbox:\n  {}",
                    self.ids[0],
                    left.join("\n  ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn leftovers(&self) -> Vec<String> {
        let env = containerd();
        let mut left: Vec<String> = self
            .processes
            .iter()
            .filter(|p| procfs::still_alive(**p))
            .map(|p| describe_process("process of the pod", p.pid))
            .collect();
        for pid in procfs::pids() {
            if in_cgroup(pid, &self.cgroup_parent) && procfs::alive(pid).is_some() {
                left.push(describe_process("process in the pod's cgroup", pid));
            }
        }
        let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
        left.extend(shims_left(&ids));
        left.extend(mounts_left(|point| {
            Path::new(point) == self.netns || ids.iter().any(|id| point.contains(id))
        }));
        if env.path(&self.netns).exists() {
            left.push(format!("network namespace {}", self.netns.display()));
        }

        left.extend(
            container_cgroups(&self.cgroup_parent)
                .into_iter()
                .map(|dir| format!("container cgroup {}", dir.display())),
        );

        let socket = env.path(shim_socket_in(CRI_NAMESPACE, &self.ids[0]));
        if socket.exists() {
            left.push(format!("shim socket {}", socket.display()));
        }
        // Bundles (io.containerd.runtime.v2.task/k8s.io/<id>), CRI's per-sandbox and
        // per-container state, and the shims' state under /run/containerd.
        for dir in [env.path(&env.state_dir), env.path("/run/containerd")] {
            for id in &self.ids {
                left.extend(
                    find_named(&dir, id, 4)
                        .into_iter()
                        .map(|path| format!("state {}", path.display())),
                );
            }
        }
        left
    }
}

/// The path of the pod's network namespace, from containerd's verbose PodSandboxStatus
/// (the runtime spec of the sandbox container).
fn network_namespace(pod: &mut Pod) -> Result<PathBuf> {
    let status = pod.status()?;
    let info = status
        .info
        .get("info")
        .context("PodSandboxStatus (verbose) has no `info`")?;
    let info: serde_json::Value =
        serde_json::from_str(info).context("PodSandboxStatus `info` is not JSON")?;
    let namespaces = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .context("the sandbox's runtime spec has no linux namespaces")?;
    namespaces
        .iter()
        .find(|ns| ns["type"] == "network")
        .and_then(|ns| ns["path"].as_str())
        .map(PathBuf::from)
        .with_context(|| {
            format!("the sandbox's runtime spec joins no network namespace: {namespaces:?}")
        })
}

/// The systemd slice that a pod's `cgroup_parent` names (`….slice`, as the kubelet's systemd
/// driver sends it), if it does. containerd then asks for the cgroupsPath
/// `<slice>:cri-containerd:<id>`: below `<slice>` with the systemd driver, in one cgroup of
/// that name (relative to the runtime's own) with the cgroupfs driver.
pub fn systemd_slice(cgroup_parent: &str) -> Option<&str> {
    let base = cgroup_parent.trim_end_matches('/').rsplit('/').next()?;
    base.ends_with(".slice").then_some(base)
}

/// Whether cgroup path `path` (as in /proc/PID/cgroup) belongs to a pod whose
/// `cgroup_parent` is `cgroup_parent`.
fn in_pod_cgroup(path: &str, cgroup_parent: &str) -> bool {
    match systemd_slice(cgroup_parent) {
        Some(slice) => {
            let container = format!("{slice}:");
            path.split('/')
                .any(|part| part == slice || part.starts_with(&container))
        }
        None => {
            let prefix = format!("{}/", cgroup_parent.trim_end_matches('/'));
            path == cgroup_parent || path.starts_with(&prefix)
        }
    }
}

/// Whether process `pid` is in cgroup `cgroup_parent` or below, in any hierarchy (for a
/// systemd slice, see [`systemd_slice`]).
pub fn in_cgroup(pid: u32, cgroup_parent: &str) -> bool {
    procfs::cgroups(pid)
        .iter()
        .any(|path| in_pod_cgroup(path, cgroup_parent))
}

/// How deep below a hierarchy's root the cgroups of a pod in a systemd slice are looked for
/// (the cgroupfs driver puts them below the runtime's own cgroup).
const SLICE_SEARCH_DEPTH: usize = 6;

/// The cgroups of the pod's containers (the sandbox's included), in every hierarchy.
pub fn container_cgroups(cgroup_parent: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for root in cgroup_roots() {
        match systemd_slice(cgroup_parent) {
            Some(slice) => slice_cgroups(&root, slice, SLICE_SEARCH_DEPTH, &mut found),
            None => found.extend(sub_cgroups(
                &root.join(cgroup_parent.trim_start_matches('/')),
            )),
        }
    }
    found
}

/// The cgroups directly below `dir`.
fn sub_cgroups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Below `dir`: the cgroups named `<slice>:…` (cgroupfs driver) and those in a cgroup named
/// `slice` (systemd driver).
fn slice_cgroups(dir: &Path, slice: &str, depth: usize, found: &mut Vec<PathBuf>) {
    let container = format!("{slice}:");
    for sub in sub_cgroups(dir) {
        let name = sub.file_name().map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some(name) if name == slice => found.extend(sub_cgroups(&sub)),
            Some(name) if name.starts_with(&container) => found.push(sub),
            _ if depth > 1 => slice_cgroups(&sub, slice, depth - 1, found),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_cgroups_of_a_pod() {
        let cases = [
            ("/wasm-shims-cri/p1", "/wasm-shims-cri/p1/c1", true),
            ("/wasm-shims-cri/p1", "/wasm-shims-cri/p1", true),
            ("/wasm-shims-cri/p1", "/wasm-shims-cri/p10/c1", false),
            ("p.slice", "/x/p.slice:cri-containerd:c1", true),
            (
                "/a.slice/p.slice",
                "/a.slice/p.slice/cri-containerd-c1.scope",
                true,
            ),
            ("p.slice", "/x/q.slice:cri-containerd:c1", false),
            ("p.slice", "/x/p.slice-other", false),
        ];
        for (parent, path, expected) in cases {
            assert_eq!(in_pod_cgroup(path, parent), expected, "{parent} {path}");
        }
        assert_eq!(systemd_slice("/a.slice/p.slice"), Some("p.slice"));
        assert_eq!(systemd_slice("/wasm-shims-cri/p1"), None);
    }
}
