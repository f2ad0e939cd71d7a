//! Facts about the machine a run happened on, for the report.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub memory_mib: u64,
    pub kernel: String,
    pub cgroups: String,
    pub containerd: String,
    pub runc: String,
    /// `git describe` of the repository (with `-dirty` for uncommitted changes).
    pub commit: String,
    /// 1-minute load average when the run started and when it ended: well above 0 means
    /// something else was using the cores.
    pub load_at_start: f64,
    pub load_at_end: f64,
}

impl Machine {
    pub fn inspect(repo: &Path) -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(unknown),
            memory_mib: proc_field("/proc/meminfo", "MemTotal")
                .and_then(|kib| kib.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(unknown),
            cgroups: cgroup_mode().to_owned(),
            containerd: first_line("containerd", &["--version"]).unwrap_or_else(unknown),
            runc: first_line("runc", &["--version"]).unwrap_or_else(unknown),
            commit: first_line(
                "git",
                &[
                    "-C",
                    &repo.to_string_lossy(),
                    "describe",
                    "--always",
                    "--dirty",
                ],
            )
            .unwrap_or_else(unknown),
            load_at_start: load_average(),
            load_at_end: load_average(),
        }
    }
}

pub fn load_average() -> f64 {
    read_trimmed("/proc/loadavg")
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn unknown() -> String {
    "unknown".to_owned()
}

fn read_trimmed(path: &str) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_owned())
}

/// `name : value` in a /proc file such as cpuinfo or meminfo.
fn proc_field(path: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

fn cgroup_mode() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified").exists() {
        "v1 (hybrid)"
    } else {
        "v1"
    }
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output.status.success().then_some(())?;
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()?
            .trim()
            .to_owned(),
    )
}
