//! Docker's requests, reproduced: Docker Engine (moby) 23+ hands a runtime such as
//! `io.containerd.wasmtime.v1` straight to containerd, and drives the task in ways `ctr` does
//! not. No Docker engine with Wasm support runs here, so this makes the same containerd calls:
//!
//! * the container is created with the runtime's name and **no** runtime options;
//! * its spec has moby's shape: the default mounts, `/etc/hosts`, `/etc/resolv.conf` and
//!   `/etc/hostname` bound from the container's directory, moby's default capabilities,
//!   masked and read-only paths, and `cgroupsPath` as `/docker/<id>` (cgroupfs driver) or
//!   `system.slice:docker:<id>` (systemd driver);
//! * the task's stdio are FIFOs named `init-stdout`, `init-stderr` and (with `-i`) `init-stdin`
//!   in the container's directory; with `-t` there is a terminal and no stderr FIFO.
//!
//! `docker stop`, `top`, `stats`, `pause`, `update`, `exec` and `rm -f` then map onto Kill,
//! Pids, Stats, Pause/Resume, Update, Exec and Kill+Delete (see `tests/docker.rs`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::api::Api;
use crate::container::Container;
use crate::fifo::{FifoReader, make_fifo};

/// Docker's cgroup drivers and the `cgroupsPath` each writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    pub fn cgroups_path(self, id: &str) -> String {
        match self {
            CgroupDriver::Cgroupfs => format!("/docker/{id}"),
            CgroupDriver::Systemd => format!("system.slice:docker:{id}"),
        }
    }
}

/// The `docker run` flags that change what containerd is asked.
#[derive(Debug, Clone, Copy)]
pub struct RunFlags {
    /// `-i`: an `init-stdin` FIFO.
    pub interactive: bool,
    /// `-t`: a terminal, no `init-stderr`.
    pub tty: bool,
    pub cgroup: CgroupDriver,
}

/// moby's default capabilities (its `oci/caps` defaults).
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The paths Docker (and the kubelet) mask in an unprivileged container.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths Docker (and the kubelet) make read-only in an unprivileged container.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The hostname Docker gives the container (the short id), also in `/etc/hostname`.
pub fn hostname(id: &str) -> String {
    id.chars().take(12).collect()
}

/// A spec shaped like the one moby writes for `docker run IMAGE args...`.
pub fn moby_spec(id: &str, args: &[&str], env: &[String], flags: RunFlags, dir: &Path) -> Value {
    let caps = json!(DEFAULT_CAPS);
    let bind = |destination: &str, file: &str| {
        json!({
            "destination": destination,
            "type": "bind",
            "source": dir.join(file),
            "options": ["rbind", "rprivate"],
        })
    };
    json!({
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": flags.tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps,
            },
            "oomScoreAdj": 0,
        },
        "root": {"path": "rootfs"},
        "hostname": hostname(id),
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
            bind("/etc/resolv.conf", "resolv.conf"),
            bind("/etc/hostname", "hostname"),
            bind("/etc/hosts", "hosts"),
        ],
        "linux": {
            "resources": {
                "devices": [{"allow": false, "access": "rwm"}],
                "blockIO": {},
            },
            "cgroupsPath": flags.cgroup.cgroups_path(id),
            "namespaces": [
                {"type": "mount"}, {"type": "network"}, {"type": "uts"},
                {"type": "pid"}, {"type": "ipc"},
            ],
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    })
}

/// A container run the way `docker run` runs it, on a container record made by `ctr
/// container create` (runtime name, no options, the image's snapshot) whose spec is then
/// replaced by [`moby_spec`].
pub struct DockerRun {
    pub container: Container,
    dir: PathBuf,
    stdout: Option<FifoReader>,
    stderr: Option<FifoReader>,
    stdin: Option<File>,
}

impl DockerRun {
    /// Creates and starts the task; returns once it runs.
    pub fn start(container: Container, args: &[&str], flags: RunFlags) -> Result<Self> {
        let id = container.id().to_owned();
        let dir = std::env::temp_dir().join("docker-like").join(&id);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(dir.join("hostname"), format!("{}\n", hostname(&id)))?;
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost\n{}\n", hostname(&id)),
        )?;
        std::fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.1\n")?;

        container.create(args)?;
        let api = Api::connect()?;
        let spec: Value = serde_json::from_slice(&api.spec(&id)?)?;
        // The image's environment, as moby takes it from the image config.
        let env: Vec<String> = spec["process"]["env"]
            .as_array()
            .map(|vars| {
                vars.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        api.set_spec(
            &id,
            serde_json::to_vec(&moby_spec(&id, args, &env, flags, &dir))?,
        )?;

        let fifo = |name: &str| make_fifo(&dir.join(name));
        let stdout_path = fifo("init-stdout")?;
        let stdout = Some(FifoReader::start(&stdout_path)?);
        let (stderr_path, stderr) = if flags.tty {
            (None, None)
        } else {
            let path = fifo("init-stderr")?;
            let reader = FifoReader::start(&path)?;
            (Some(path), Some(reader))
        };
        let (stdin_path, stdin) = if flags.interactive {
            let path = fifo("init-stdin")?;
            // Read-write: opening never waits for the shim's reader.
            let writer = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)?;
            (Some(path), Some(writer))
        } else {
            (None, None)
        };
        let text = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        api.create_task_with_io(
            &id,
            [
                &text(&stdin_path),
                &stdout_path.to_string_lossy(),
                &text(&stderr_path),
            ],
            flags.tty,
        )?;
        api.start_task(&id)?;
        Ok(Self {
            container,
            dir,
            stdout,
            stderr,
            stdin,
        })
    }

    /// Writes to the task's stdin, then closes it (and sends CloseIO), as `docker run -i`
    /// does at the end of its input.
    pub fn send_stdin_and_close(&mut self, data: &[u8]) -> Result<()> {
        let mut stdin = self.stdin.take().context("the task has no stdin (-i)")?;
        stdin.write_all(data)?;
        drop(stdin);
        Api::connect()?.close_stdin(self.container.id())
    }

    /// Waits for the task to exit; returns its exit status, stdout and stderr.
    pub fn wait(&mut self) -> Result<(u32, String, String)> {
        let status = Api::connect()?.wait_task(self.container.id())?;
        let stdout = self
            .stdout
            .take()
            .map(FifoReader::finish)
            .unwrap_or_default();
        let stderr = self
            .stderr
            .take()
            .map(FifoReader::finish)
            .unwrap_or_default();
        Ok((status, stdout, stderr))
    }
}

impl Drop for DockerRun {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
