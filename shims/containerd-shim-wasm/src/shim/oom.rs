//! `/tasks/oom`: tells containerd when the kernel's OOM killer acted in a container's memory
//! cgroup, as runc's shim does (Kubernetes shows it as `OOMKilled`).
//!
//! cgroup v1 (and hybrid hosts, where memory is a v1 controller): an eventfd registered on
//! `memory.oom_control` through `cgroup.event_control`; the kernel signals it on every OOM in
//! the cgroup, and once more when the cgroup is removed. cgroup v2: `memory.events` changes
//! (inotify) and its `oom_kill` count grows. One small thread per container waits for these
//! and ends when the cgroup is gone.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use containerd_shim::protos::events::task::TaskOOM;
use log::{info, warn};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::shim::events::EventSink;

/// Starts watching the memory cgroup of container `id`, whose init process is `pid`.
/// A container without a memory cgroup is not watched; failures are logged, never fatal.
pub fn watch(id: &str, pid: i32, events: impl EventSink) {
    let watcher = match MemoryCgroup::of_process(pid) {
        Ok(cgroup) => cgroup.watcher(),
        Err(e) => Err(e),
    };
    let watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => {
            warn!(id; "container {id}: OOM kills will not be reported: {e:#}");
            return;
        }
    };
    let container = id.to_string();
    let spawned = std::thread::Builder::new()
        .name(format!("oom-{id}"))
        .spawn(move || {
            watcher.run(|| {
                info!(id = container.as_str(); "container {container}: OOM kill in its memory cgroup");
                events.send(TaskOOM {
                    container_id: container.clone(),
                    ..Default::default()
                });
            })
        });
    if let Err(e) = spawned {
        warn!(id; "container {id}: start the OOM watcher: {e}");
    }
}

/// Where a process's memory cgroup is, seen from the shim.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MemoryCgroup {
    V1(PathBuf),
    V2(PathBuf),
}

impl MemoryCgroup {
    fn of_process(pid: i32) -> anyhow::Result<Self> {
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .with_context(|| format!("read the cgroups of process {pid}"))?;
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        locate(&cgroups, &mountinfo)
            .ok_or_else(|| anyhow!("process {pid} has no memory cgroup that the shim can see"))
    }

    fn watcher(self) -> anyhow::Result<Watcher> {
        match self {
            MemoryCgroup::V1(dir) => {
                let control = File::open(dir.join("memory.oom_control"))
                    .with_context(|| format!("open {}/memory.oom_control", dir.display()))?;
                let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).context("eventfd")?;
                let registration =
                    format!("{} {}", eventfd.as_fd().as_raw_fd(), control.as_raw_fd());
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.event_control"))
                    .and_then(|mut f| f.write_all(registration.as_bytes()))
                    .with_context(|| {
                        format!("register with {}/cgroup.event_control", dir.display())
                    })?;
                Ok(Watcher::V1 {
                    dir,
                    eventfd,
                    _control: control,
                })
            }
            MemoryCgroup::V2(dir) => {
                let events = dir.join("memory.events");
                let inotify = Inotify::init(InitFlags::IN_CLOEXEC).context("inotify_init")?;
                inotify
                    .add_watch(&events, AddWatchFlags::IN_MODIFY)
                    .with_context(|| format!("watch {}", events.display()))?;
                let seen = oom_kills(&events).unwrap_or(0);
                Ok(Watcher::V2 {
                    events,
                    inotify,
                    seen,
                })
            }
        }
    }
}

/// The memory cgroup directory of a process from its `/proc/PID/cgroup` and the shim's
/// mountinfo: the v1 `memory` hierarchy if there is one, else the unified hierarchy.
fn locate(cgroups: &str, mountinfo: &str) -> Option<MemoryCgroup> {
    let entries = crate::proc_text::cgroup_entries(cgroups);
    let mounts = crate::proc_text::mounts(mountinfo);
    if let Some((_, path)) = entries
        .iter()
        .find(|(controllers, _)| controllers.split(',').any(|c| c == "memory"))
    {
        let (_, point, _) = mounts.iter().find(|(fstype, _, options)| {
            *fstype == "cgroup" && options.split(',').any(|o| o == "memory")
        })?;
        return Some(MemoryCgroup::V1(join(point, path)));
    }
    let (_, path) = entries
        .iter()
        .find(|(controllers, _)| controllers.is_empty())?;
    let (_, point, _) = mounts.iter().find(|(fstype, _, _)| *fstype == "cgroup2")?;
    Some(MemoryCgroup::V2(join(point, path)))
}

fn join(mount_point: &str, cgroup: &str) -> PathBuf {
    Path::new(mount_point).join(cgroup.trim_start_matches('/'))
}

enum Watcher {
    V1 {
        dir: PathBuf,
        eventfd: EventFd,
        /// Registered with the eventfd; kept open while watching.
        _control: File,
    },
    V2 {
        events: PathBuf,
        inotify: Inotify,
        seen: u64,
    },
}

impl Watcher {
    /// Calls `on_oom` for each OOM kill until the cgroup is removed.
    fn run(self, on_oom: impl Fn()) {
        match self {
            Watcher::V1 { dir, eventfd, .. } => loop {
                let Ok(signals) = eventfd.read() else { return };
                let removed = !dir.join("memory.oom_control").exists();
                // The removal itself signals once: more than that means an OOM came first.
                if !removed || signals > 1 {
                    on_oom();
                }
                if removed {
                    return;
                }
            },
            Watcher::V2 {
                events,
                inotify,
                mut seen,
            } => loop {
                let Ok(changes) = inotify.read_events() else {
                    return;
                };
                let Ok(kills) = oom_kills(&events) else {
                    return;
                };
                if kills > seen {
                    seen = kills;
                    on_oom();
                }
                if changes
                    .iter()
                    .any(|c| c.mask.contains(AddWatchFlags::IN_IGNORED))
                {
                    return;
                }
            },
        }
    }
}

/// The `oom_kill` count of a cgroup v2 `memory.events` file.
fn oom_kills(events: &Path) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(events)?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n\
36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n";

    #[test]
    fn hybrid_hosts_use_the_v1_memory_hierarchy() {
        let cgroups = "5:cpu,cpuacct:/ns/c1\n4:memory:/ns/c1\n0::/ns/c1\n";
        assert_eq!(
            locate(cgroups, MOUNTINFO),
            Some(MemoryCgroup::V1(PathBuf::from(
                "/sys/fs/cgroup/memory/ns/c1"
            )))
        );
    }

    #[test]
    fn unified_hosts_use_cgroup2() {
        let mountinfo = "31 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            locate("0::/k8s/pod/c1\n", mountinfo),
            Some(MemoryCgroup::V2(PathBuf::from("/sys/fs/cgroup/k8s/pod/c1")))
        );
        assert_eq!(locate("0::/c1\n", "no cgroup mounts here\n"), None);
    }

    #[test]
    fn counts_oom_kills_of_memory_events() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n").unwrap();
        assert_eq!(oom_kills(&events).unwrap(), 2);
        std::fs::write(&events, "low 0\n").unwrap();
        assert_eq!(oom_kills(&events).unwrap(), 0);
    }
}
