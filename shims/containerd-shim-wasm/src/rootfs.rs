//! The container's root filesystem: containerd hands the shim the snapshot's mounts, and the
//! shim mounts them at `<bundle>/rootfs` (as runc's shim does) and unmounts them at delete.

use std::path::{Path, PathBuf};

use anyhow::Context;
use containerd_shim::protos::types::mount::Mount;

/// A rootfs this shim mounted; unmounted by [`MountedRootfs::unmount`].
#[derive(Debug)]
pub struct MountedRootfs {
    target: PathBuf,
}

/// Mounts `mounts` at `<bundle>/rootfs`. No mounts means the rootfs is already in place
/// (e.g. `ctr run --rootfs`).
pub fn mount(bundle: &Path, mounts: &[Mount]) -> anyhow::Result<Option<MountedRootfs>> {
    if mounts.is_empty() {
        return Ok(None);
    }
    let target = bundle.join("rootfs");
    std::fs::create_dir_all(&target).with_context(|| format!("create {}", target.display()))?;
    let mounted = MountedRootfs { target };
    for m in mounts {
        containerd_shim::mount::mount_rootfs(
            Some(&m.type_),
            Some(&m.source),
            &m.options,
            &mounted.target,
        )
        .with_context(|| {
            format!(
                "mount {} ({}) at {}",
                m.source,
                m.type_,
                mounted.target.display()
            )
        })
        .inspect_err(|_| {
            let _ = mounted.unmount();
        })?;
    }
    Ok(Some(mounted))
}

impl MountedRootfs {
    /// Unmounts everything at and below the rootfs.
    pub fn unmount(&self) -> anyhow::Result<()> {
        let target = self.target.to_string_lossy();
        containerd_shim::mount::umount_recursive(Some(&target), libc::MNT_DETACH)
            .with_context(|| format!("unmount {target}"))
    }
}
