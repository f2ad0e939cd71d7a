//! The `/proc` texts the library reads for cgroups: a process's `cgroup` file and the mount
//! table (`mountinfo`). Parsed here once for the OOM watcher (oom.rs) and the cgroup mount of a
//! pod's PID namespace member (spec_compat.rs).

/// The `(controllers, path)` of each line of a `/proc/PID/cgroup` text
/// (`hierarchy-id:controllers:path`; the controllers are empty for cgroup v2).
pub fn cgroup_entries(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let _id = fields.next()?;
            Some((fields.next()?, fields.next()?))
        })
        .collect()
}

/// The `(filesystem type, mount point, super options)` of each line of a `mountinfo` text.
pub fn mounts(text: &str) -> Vec<(&str, &str, &str)> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let options = right.nth(1)?;
            let point = left.split(' ').nth(4)?;
            Some((fstype, point, options))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_into_their_fields() {
        assert_eq!(
            cgroup_entries("4:memory:/a/b\n2:cpu,cpuacct:/\n0::/c\nbroken\n"),
            [("memory", "/a/b"), ("cpu,cpuacct", "/"), ("", "/c")]
        );
        let mountinfo = "33 30 0:29 / /sys/fs/cgroup/memory rw,nosuid shared:5 - cgroup cgroup rw,memory\n\
                         31 23 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\nshort line\n";
        assert_eq!(
            mounts(mountinfo),
            [
                ("cgroup", "/sys/fs/cgroup/memory", "rw,memory"),
                ("cgroup2", "/sys/fs/cgroup/unified", "rw"),
            ]
        );
    }
}
