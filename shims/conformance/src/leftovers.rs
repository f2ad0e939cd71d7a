//! What a deleted container must not leave behind: processes, mounts, cgroups, the bundle,
//! the shim's socket and its state directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::environment::containerd;
use crate::procfs::{self, ProcessId};

/// How long a delete may take to finish tearing down in the background (the shim exits
/// after answering containerd's Shutdown).
const SETTLE_TIME: Duration = Duration::from_secs(3);

/// Where the things of a container are named after it: its containerd namespace (bundle,
/// shim socket) and the cgroup its own cgroup `<cgroup parent>/<id>` is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub namespace: String,
    pub cgroup_parent: String,
}

impl Scope {
    /// The suite's containers, made with ctr: ctr's default cgroupsPath is `/<namespace>/<id>`.
    pub fn suite() -> Self {
        let namespace = containerd().namespace.clone();
        Self {
            cgroup_parent: namespace.clone(),
            namespace,
        }
    }
}

/// The processes of a running container, recorded so that they can be checked after delete
/// even if they escaped the container's cgroup.
#[derive(Debug, Clone)]
pub struct Footprint {
    id: String,
    scope: Scope,
    processes: Vec<ProcessId>,
}

impl Footprint {
    /// Records the processes of the suite's container `id` now: those in its cgroup, and its
    /// own shim with all its descendants (when the container has a shim of its own).
    pub fn observe(id: &str) -> Self {
        Self::observe_in(&Scope::suite(), id)
    }

    /// [`Footprint::observe`] for a container of `scope` (e.g. one that Docker made).
    pub fn observe_in(scope: &Scope, id: &str) -> Self {
        let mut processes: Vec<ProcessId> = procfs::pids()
            .into_iter()
            .filter(|pid| in_cgroup_of(scope, *pid, id))
            .filter_map(procfs::alive)
            .collect();
        for shim in shims_of(id) {
            processes.extend(procfs::process_tree(shim));
        }
        processes.sort_by_key(|p| p.pid);
        processes.dedup();
        Self {
            id: id.to_owned(),
            scope: scope.clone(),
            processes,
        }
    }

    /// Recorded processes, for tests that want to see the container was observed at all.
    pub fn processes(&self) -> &[ProcessId] {
        &self.processes
    }

    /// Waits for the teardown to settle; fails with everything still there.
    pub fn expect_gone(&self) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIME;
        loop {
            let mut left = leftovers_in(&self.scope, &self.id);
            left.extend(
                self.processes
                    .iter()
                    .filter(|p| procfs::still_alive(**p))
                    .map(|p| describe_process("process of the container", p.pid)),
            );
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "container {} left behind, {SETTLE_TIME:?} after delete:\n  {}",
                    self.id,
                    left.join("\n  ")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits for the teardown of container `id` to settle; fails with everything still there.
/// Use [`Footprint`] when the container could be observed while it ran.
pub fn expect_no_leftovers(id: &str) -> Result<()> {
    Footprint {
        id: id.to_owned(),
        scope: Scope::suite(),
        processes: Vec::new(),
    }
    .expect_gone()
}

/// Everything of the suite's container `id` that exists now, described for a failure message.
pub fn leftovers_of(id: &str) -> Vec<String> {
    leftovers_in(&Scope::suite(), id)
}

/// Everything of container `id` of `scope` that exists now, described for a failure message.
pub fn leftovers_in(scope: &Scope, id: &str) -> Vec<String> {
    let env = containerd();
    let mut left = Vec::new();

    for pid in procfs::pids() {
        if in_cgroup_of(scope, pid, id) && procfs::alive(pid).is_some() {
            left.push(describe_process("process in the container's cgroup", pid));
        }
    }
    left.extend(shims_left(&[id]));
    left.extend(mounts_left(|point| {
        Path::new(point).iter().any(|part| part == id)
    }));

    let cgroup_path = Path::new(&scope.cgroup_parent).join(id);
    // A cgroupsPath in systemd's `slice:prefix:<id>` form, placed by the cgroupfs driver,
    // is a cgroup of that name at the hierarchy's root.
    let slice_form = format!(":{id}");
    for root in cgroup_roots() {
        let dir = root.join(&cgroup_path);
        if dir.exists() {
            left.push(format!("cgroup {}", dir.display()));
        }
        let named = std::fs::read_dir(&root).into_iter().flatten().flatten();
        for entry in named.filter(|e| e.file_name().to_string_lossy().ends_with(&slice_form)) {
            left.push(format!("cgroup {}", entry.path().display()));
        }
    }

    let bundle = env.bundle_dir_in(&scope.namespace, id);
    if bundle.exists() {
        left.push(format!("bundle {}", bundle.display()));
    }

    let socket = env.path(shim_socket_in(&scope.namespace, id));
    if socket.exists() {
        left.push(format!("shim socket {}", socket.display()));
    }

    // Shims keep per-container state under /run/containerd/<runtime>/<namespace>/<id>
    // (runc's is /run/containerd/runc/<ns>/<id>): nothing there may carry the id, except
    // in fifo/, which belongs to ctr (the harness gives each container a FIFO dir there).
    let run_dir = env.path("/run/containerd");
    left.extend(
        find_named(&run_dir, id, 4)
            .into_iter()
            .filter(|path| !path.starts_with(run_dir.join("fifo")))
            .map(|path| format!("shim state {}", path.display())),
    );
    left
}

/// A process for a failure message: what it is, its pid and command line.
pub fn describe_process(what: &str, pid: u32) -> String {
    format!("{what}: pid {pid} `{}`", procfs::cmdline(pid).join(" "))
}

/// The shim processes still serving containers `ids`, and any helper zygote whose shim is gone.
pub fn shims_left(ids: &[&str]) -> Vec<String> {
    let shims = ids.iter().flat_map(|id| shims_of(id)).map(|pid| {
        let threads = procfs::threads(pid).join(", ");
        format!(
            "{} (threads: {threads})",
            describe_process("shim process", pid)
        )
    });
    let zygotes = orphaned_zygotes()
        .into_iter()
        .map(|pid| describe_process("helper zygote of a dead shim", pid));
    shims.chain(zygotes).collect()
}

/// The mount points in containerd's mount namespace that `matches` accepts.
pub fn mounts_left(matches: impl Fn(&str) -> bool) -> Vec<String> {
    let mountinfo = PathBuf::from(format!("/proc/{}/mountinfo", containerd().pid()));
    match procfs::mount_points(&mountinfo) {
        Ok(points) => points
            .into_iter()
            .filter(|point| matches(point))
            .map(|point| format!("mount {point} in containerd's mount namespace"))
            .collect(),
        Err(e) => vec![format!("cannot read {}: {e}", mountinfo.display())],
    }
}

/// A process of container `id` (one in its cgroup), for tests that look at it from outside.
pub fn process_in_container(id: &str) -> Result<u32> {
    procfs::pids()
        .into_iter()
        .find(|pid| in_container_cgroup(*pid, id))
        .with_context(|| format!("no process in the cgroup of {id}"))
}

/// Whether process `pid` is in cgroup `/<namespace>/<id>` (ctr's default cgroupsPath) or below.
pub fn in_container_cgroup(pid: u32, id: &str) -> bool {
    in_cgroup_of(&Scope::suite(), pid, id)
}

/// Whether process `pid` is in the cgroup of container `id` of `scope` or below.
pub fn in_cgroup_of(scope: &Scope, pid: u32, id: &str) -> bool {
    procfs::cgroups(pid).iter().any(|path| {
        let parts: Vec<&str> = path.split('/').collect();
        parts
            .windows(2)
            .any(|w| w[0] == scope.cgroup_parent && w[1] == id)
    })
}

/// Our shims' helper zygotes (named `helper-zygote`) whose parent is no longer a shim: a
/// zygote must end with the shim that started it.
pub fn orphaned_zygotes() -> Vec<u32> {
    zygotes()
        .into_iter()
        .filter(|pid| {
            procfs::ancestors(*pid)
                .first()
                .is_none_or(|parent| !procfs::is_shim(&procfs::cmdline(*parent)))
        })
        .collect()
}

/// Live helper zygotes of our shims. Their forks (helpers, then a Wasm container's process)
/// keep the command line but not the name.
pub fn zygotes() -> Vec<u32> {
    procfs::pids()
        .into_iter()
        .filter(|pid| {
            let args = procfs::cmdline(*pid);
            procfs::is_shim(&args)
                && args.get(1).map(String::as_str) == Some("helper-zygote")
                && procfs::comm(*pid) == "helper-zygote"
        })
        .collect()
}

/// Live shim processes started for container `id` (`containerd-shim-* ... -id <id> ...`).
pub fn shims_of(id: &str) -> Vec<u32> {
    procfs::pids()
        .into_iter()
        .filter(|pid| {
            let args = procfs::cmdline(*pid);
            procfs::is_shim(&args) && args.windows(2).any(|w| w[0] == "-id" && w[1] == id)
        })
        .collect()
}

/// The socket a shim for container `id` listens on: containerd 1.6 and the Rust shim crate
/// both use `/run/containerd/s/<sha256 of "<containerd address>/<namespace>/<id>">`.
pub fn shim_socket(id: &str) -> PathBuf {
    shim_socket_in(&containerd().namespace, id)
}

/// [`shim_socket`] for a container in containerd namespace `namespace`.
pub fn shim_socket_in(namespace: &str, id: &str) -> PathBuf {
    let env = containerd();
    let key = format!("{}/{}/{}", env.address.display(), namespace, id);
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from("/run/containerd/s").join(hex)
}

/// Mount points of the cgroup v1 hierarchies and of cgroup2.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let point = left.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(point))
        })
        .collect()
}

/// Entries called `name` in `dir`, up to `depth` levels down (symlinks not followed).
pub fn find_named(dir: &Path, name: &str, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            found.push(path.clone());
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if depth > 1 && is_dir {
            found.extend(find_named(&path, name, depth - 1));
        }
    }
    found
}
