//! Memory of processes from /proc: PSS (each shared page split among the processes that map
//! it), RSS and private memory, from `/proc/PID/smaps_rollup`.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use shim_conformance::procfs;

/// Memory of one process or a sum over several, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub pss_kib: u64,
    pub rss_kib: u64,
    /// Pages no other process maps (`Private_Clean + Private_Dirty`).
    pub private_kib: u64,
    /// PSS of anonymous memory (heap, stacks, Wasm linear memory, loaded code).
    pub pss_anon_kib: u64,
    /// PSS of file-backed mappings (the binary and its libraries).
    pub pss_file_kib: u64,
}

impl Usage {
    pub fn of(pid: u32) -> Result<Self> {
        let path = format!("/proc/{pid}/smaps_rollup");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let field = |name: &str| -> u64 {
            text.lines()
                .filter_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
                .next()
                .unwrap_or(0)
        };
        Self {
            pss_kib: field("Pss"),
            rss_kib: field("Rss"),
            private_kib: field("Private_Clean") + field("Private_Dirty"),
            pss_anon_kib: field("Pss_Anon"),
            pss_file_kib: field("Pss_File"),
        }
    }

    pub fn add(self, other: Self) -> Self {
        Self {
            pss_kib: self.pss_kib + other.pss_kib,
            rss_kib: self.rss_kib + other.rss_kib,
            private_kib: self.private_kib + other.private_kib,
            pss_anon_kib: self.pss_anon_kib + other.pss_anon_kib,
            pss_file_kib: self.pss_file_kib + other.pss_file_kib,
        }
    }
}

/// The shim processes serving containers of `namespace` whose shim id is in `ids`
/// (`containerd-shim-* -namespace NS -id ID ...`).
pub fn shims(namespace: &str, ids: &BTreeSet<String>) -> BTreeSet<u32> {
    procfs::pids()
        .into_iter()
        .filter(|pid| {
            let args = procfs::cmdline(*pid);
            procfs::is_shim(&args)
                && flag(&args, "-namespace") == Some(namespace)
                && flag(&args, "-id").is_some_and(|id| ids.contains(id))
        })
        .collect()
}

/// The processes in the cgroups of containers `ids` (`/<namespace>/<id>` in any hierarchy).
pub fn in_container_cgroups(namespace: &str, ids: &BTreeSet<String>) -> BTreeSet<u32> {
    procfs::pids()
        .into_iter()
        .filter(|pid| {
            procfs::cgroups(*pid).iter().any(|path| {
                let parts: Vec<&str> = path.split('/').collect();
                parts
                    .windows(2)
                    .any(|pair| pair[0] == namespace && ids.contains(pair[1]))
            })
        })
        .collect()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smaps_rollup() {
        let text = "\
55d0c0a00000-7ffc8b9f1000 ---p 00000000 00:00 0                          [rollup]
Rss:               12000 kB
Pss:                4000 kB
Pss_Anon:           3000 kB
Pss_File:            900 kB
Pss_Shmem:           100 kB
Shared_Clean:       7000 kB
Private_Clean:       500 kB
Private_Dirty:      2500 kB
";
        assert_eq!(
            Usage::parse(text),
            Usage {
                pss_kib: 4000,
                rss_kib: 12000,
                private_kib: 3000,
                pss_anon_kib: 3000,
                pss_file_kib: 900,
            }
        );
    }

    #[test]
    fn this_process_has_memory() {
        let usage = Usage::of(std::process::id()).unwrap();
        assert!(usage.pss_kib > 0 && usage.rss_kib >= usage.pss_kib);
    }

    #[test]
    fn finds_flags() {
        let args: Vec<String> = ["shim", "-namespace", "ns", "-id", "c1"]
            .map(String::from)
            .into();
        assert_eq!(flag(&args, "-id"), Some("c1"));
        assert_eq!(flag(&args, "-address"), None);
    }
}
