//! The container's rootfs as the shim sees it: mounted by the create helper at
//! `<bundle>/rootfs` (`helper/rootfs.rs`), unmounted by the shim at delete.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::request::RootfsMount;

/// A rootfs the create helper mounts; unmounted by [`MountedRootfs::unmount`].
#[derive(Debug)]
pub struct MountedRootfs {
    target: PathBuf,
}

/// Where `mounts` go for this bundle, or None when there are none (the rootfs is already in
/// place, e.g. `ctr run --rootfs`).
pub fn planned(bundle: &Path, mounts: &[RootfsMount]) -> Option<MountedRootfs> {
    (!mounts.is_empty()).then(|| MountedRootfs::of_bundle(bundle))
}

impl MountedRootfs {
    /// The rootfs of `bundle`, `<bundle>/rootfs`.
    pub fn of_bundle(bundle: &Path) -> Self {
        Self {
            target: bundle.join("rootfs"),
        }
    }

    /// Unmounts everything at and below the rootfs (nothing, if it was never mounted).
    pub fn unmount(&self) -> anyhow::Result<()> {
        let target = self.target.to_string_lossy();
        containerd_shim::mount::umount_recursive(Some(&target), libc::MNT_DETACH)
            .with_context(|| format!("unmount {target}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_only_when_there_are_mounts() {
        assert!(planned(Path::new("/b"), &[]).is_none());
        let m = RootfsMount {
            fs_type: "bind".into(),
            source: "/s".into(),
            options: vec![],
        };
        assert_eq!(
            planned(Path::new("/b"), &[m]).unwrap().target,
            PathBuf::from("/b/rootfs")
        );
    }
}
