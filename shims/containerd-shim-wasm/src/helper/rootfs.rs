//! The container's root filesystem: containerd hands the shim the snapshot's mounts, the
//! create helper mounts them here at `<bundle>/rootfs` (as runc does for runc's shim), and the
//! shim unmounts them at delete (`shim/rootfs.rs`).
//!
//! The mounting happens in the single-threaded create helper, not in the shim: the
//! `containerd-shim` crate's `mount_rootfs` forks from its caller, which is undefined behaviour
//! in the multi-threaded shim, and waits for its child through a reaper the helper does not
//! run. Hence the small option parser below.

use std::path::Path;

use anyhow::{Context, bail};
use nix::mount::MsFlags;

use crate::request::RootfsMount;

/// In the create helper: mounts `mounts` one after the other at `target`.
pub fn mount_all(target: &Path, mounts: &[RootfsMount]) -> anyhow::Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(target).with_context(|| format!("create {}", target.display()))?;
    for m in mounts {
        mount_one(target, m).with_context(|| {
            format!("mount {} ({}) at {}", m.source, m.fs_type, target.display())
        })?;
    }
    Ok(())
}

fn mount_one(target: &Path, m: &RootfsMount) -> anyhow::Result<()> {
    let (flags, propagation, data) = parse_options(&m.options);
    let data = shorten_lowerdirs(data)?;
    nix::mount::mount(
        Some(m.source.as_str()),
        target,
        Some(m.fs_type.as_str()),
        flags,
        data.as_deref(),
    )?;
    // A read-only bind mount needs a remount; propagation is its own mount call.
    if flags.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )?;
    }
    if !propagation.is_empty() {
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            propagation,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// Splits mount(8)-style options into flags, propagation flags and filesystem data.
fn parse_options(options: &[String]) -> (MsFlags, MsFlags, Option<String>) {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        let (set, clear, prop) = match option.as_str() {
            "defaults" | "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty()),
            "rbind" => (
                MsFlags::MS_BIND | MsFlags::MS_REC,
                MsFlags::empty(),
                MsFlags::empty(),
            ),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            ),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
            ),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SHARED | MsFlags::MS_REC,
            ),
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) - clear;
        propagation |= prop;
    }
    let data = (!data.is_empty()).then(|| data.join(","));
    (flags, propagation, data)
}

/// The kernel takes at most a page of mount data. Images with many layers give overlay a
/// longer `lowerdir`: then work from the layers' common parent directory with relative paths
/// (safe here: the create helper is single-threaded).
fn shorten_lowerdirs(data: Option<String>) -> anyhow::Result<Option<String>> {
    const LIMIT: usize = 4096 - 512;
    let Some(data) = data else { return Ok(None) };
    if data.len() < LIMIT {
        return Ok(Some(data));
    }
    let mut options: Vec<String> = data.split(',').map(str::to_string).collect();
    let Some(lower) = options.iter_mut().find(|o| o.starts_with("lowerdir=")) else {
        bail!(
            "mount options are {} bytes, more than the kernel takes",
            data.len()
        );
    };
    let dirs: Vec<&str> = lower["lowerdir=".len()..].split(':').collect();
    let parent = common_parent(&dirs);
    let relative: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.strip_prefix(&parent)
                .unwrap_or(d)
                .trim_start_matches('/')
                .to_string()
        })
        .collect();
    *lower = format!("lowerdir={}", relative.join(":"));
    std::env::set_current_dir(&parent).with_context(|| format!("enter {parent}"))?;
    let shortened = options.join(",");
    if shortened.len() >= LIMIT {
        bail!(
            "mount options are {} bytes even relative to {parent}",
            shortened.len()
        );
    }
    Ok(Some(shortened))
}

/// The longest directory that contains every path of `dirs`.
fn common_parent(dirs: &[&str]) -> String {
    let mut parts: Vec<&str> = dirs
        .first()
        .map(|d| d.split('/').collect())
        .unwrap_or_default();
    parts.pop();
    for dir in dirs {
        let other: Vec<&str> = dir.split('/').collect();
        let same = parts.iter().zip(&other).take_while(|(a, b)| a == b).count();
        parts.truncate(same.min(other.len().saturating_sub(1)));
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (flags, propagation, data) = parse_options(&strings(&[
            "ro",
            "rbind",
            "nosuid",
            "rprivate",
            "index=off",
            "workdir=/w",
        ]));
        assert_eq!(
            flags,
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID
        );
        assert_eq!(propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(data.as_deref(), Some("index=off,workdir=/w"));
        let (flags, _, data) = parse_options(&strings(&["ro", "rw"]));
        assert_eq!(flags, MsFlags::empty(), "a later rw clears ro");
        assert_eq!(data, None);
    }

    #[test]
    fn long_lowerdirs_become_relative_to_their_parent() {
        let layers: Vec<String> = (0..80)
            .map(|i| {
                format!(
                    "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/{i}/fs"
                )
            })
            .collect();
        assert_eq!(
            common_parent(&layers.iter().map(String::as_str).collect::<Vec<_>>()),
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
        );
        let short = shorten_lowerdirs(Some("index=off,lowerdir=/a/1/fs:/a/2/fs".into())).unwrap();
        assert_eq!(
            short.as_deref(),
            Some("index=off,lowerdir=/a/1/fs:/a/2/fs"),
            "short data untouched"
        );
        assert_eq!(common_parent(&["/a/1/fs", "/a/2/fs"]), "/a");
        assert_eq!(common_parent(&["/x/fs"]), "/x");
    }
}
