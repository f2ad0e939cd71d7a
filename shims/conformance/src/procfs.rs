//! The little of /proc the leftover checks need.

use std::path::Path;

/// A process, identified across pid reuse by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat (clock ticks since boot).
    pub start_time: u64,
}

/// Host pids of all processes, as far as /proc shows them now.
pub fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Command-line arguments (empty for zombies and kernel threads, or if the process is gone).
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether command line `args` is a containerd shim's (`containerd-shim*`).
pub fn is_shim(args: &[String]) -> bool {
    args.first()
        .and_then(|exe| std::path::Path::new(exe).file_name())
        .is_some_and(|name| name.to_string_lossy().starts_with("containerd-shim"))
}

/// The cgroup paths of a process, one per hierarchy (`4:memory:/wasm-test/id` gives `/wasm-test/id`).
pub fn cgroups(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|text| {
            text.lines()
                .filter_map(|line| line.splitn(3, ':').nth(2).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

struct Stat {
    state: char,
    parent: u32,
    start_time: u64,
}

/// The process's name (`/proc/PID/comm`, what `prctl(PR_SET_NAME)` set), empty when gone.
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|name| name.trim_end().to_owned())
        .unwrap_or_default()
}

/// What each thread of process `pid` is doing: `name state kernel-wait-channel` per thread,
/// for a failure message about a process that should have exited.
pub fn threads(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .map(|task| {
            let dir = task.path();
            let read = |file: &str| {
                std::fs::read_to_string(dir.join(file))
                    .map(|text| text.trim_end().to_owned())
                    .unwrap_or_default()
            };
            let state = stat_of(&read("stat")).map_or('?', |stat| stat.state);
            format!("{} {state} {}", read("comm"), read("wchan"))
        })
        .collect()
}

fn stat(pid: u32) -> Option<Stat> {
    stat_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses the text of a `stat` file.
fn stat_of(text: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        parent: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The process if it is alive (zombies count as gone: they hold nothing but a pid).
pub fn alive(pid: u32) -> Option<ProcessId> {
    let stat = stat(pid)?;
    (stat.state != 'Z').then_some(ProcessId {
        pid,
        start_time: stat.start_time,
    })
}

/// Whether this exact process (not a later one with the same pid) is still alive.
pub fn still_alive(process: ProcessId) -> bool {
    alive(process.pid) == Some(process)
}

/// `root` and every live process below it in the parent tree.
pub fn process_tree(root: u32) -> Vec<ProcessId> {
    let parents: Vec<(u32, u32)> = pids()
        .into_iter()
        .filter_map(|pid| stat(pid).map(|s| (pid, s.parent)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree.into_iter().filter_map(alive).collect()
}

/// The parent, grandparent, ... of `pid`, up to pid 1 (or as far as /proc shows them).
pub fn ancestors(pid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    let mut current = pid;
    while let Some(parent) = stat(current).map(|s| s.parent).filter(|p| *p != 0) {
        chain.push(parent);
        if parent == 1 {
            break;
        }
        current = parent;
    }
    chain
}

/// Mount points listed in a mountinfo file (field 5).
pub fn mount_points(mountinfo: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(mountinfo)?
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(unescape_octal))
        .collect())
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(unescape_octal(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape_octal(r"/plain\x"), r"/plain\x");
    }

    #[test]
    fn sees_itself_alive_with_a_stable_identity() {
        let me = alive(std::process::id()).expect("this process is alive");
        assert!(still_alive(me));
        assert!(!still_alive(ProcessId {
            start_time: me.start_time + 1,
            ..me
        }));
        assert!(process_tree(std::process::id()).contains(&me));
        let parent = std::os::unix::process::parent_id();
        assert_eq!(ancestors(std::process::id()).first(), Some(&parent));
    }
}
