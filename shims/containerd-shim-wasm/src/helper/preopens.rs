//! The directories a module may open (WASI preopens).
//!
//! By default a module gets the container's rootfs as `/` (read-only when `root.readonly`) and
//! its working directory as `.`. The annotation [`PREOPENS_ANNOTATION`] narrows that to a
//! list of directories of the rootfs, each seen by the module at the same path:
//!
//! ```text
//! io.containerd.wasm.preopens=/data,/cache:ro     only /data (read-write) and /cache (read-only)
//! io.containerd.wasm.preopens=                    no directory at all
//! ```
//!
//! An entry is an absolute path without `..` components or `:`, optionally followed by `:ro`
//! (`:rw` is accepted and is the default, unless `root.readonly` makes everything read-only).
//! The working directory is preopened as `.` only when it lies inside a listed directory. The
//! module cannot leave a preopen: the engines resolve `..`, absolute paths and symlinks inside
//! it, and the whole container is under its own root (`pivot_root`) besides.

use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use oci_spec::runtime::Spec;

use crate::engine::Preopen;

/// The container annotation that narrows the preopened directories.
pub const PREOPENS_ANNOTATION: &str = "io.containerd.wasm.preopens";

/// The preopens of a container whose spec is `spec`, as the module sees them inside the
/// container (host paths are the container's own paths after `pivot_root`).
pub fn for_spec(spec: &Spec) -> anyhow::Result<Vec<Preopen>> {
    let root_read_only = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    let cwd = spec
        .process()
        .as_ref()
        .map(|p| p.cwd().clone())
        .unwrap_or_else(|| "/".into());
    let annotation = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(PREOPENS_ANNOTATION));
    let dirs = match annotation {
        Some(value) => {
            parse(value).with_context(|| format!("annotation {PREOPENS_ANNOTATION}={value:?}"))?
        }
        None => vec![Dir {
            path: PathBuf::from("/"),
            read_only: false,
        }],
    };
    let mut preopens: Vec<Preopen> = dirs
        .iter()
        .map(|dir| Preopen {
            host_path: dir.path.clone(),
            guest_path: dir.path.display().to_string(),
            read_only: dir.read_only || root_read_only,
        })
        .collect();
    let cwd_dir = dirs
        .iter()
        .filter(|dir| cwd.starts_with(&dir.path))
        .max_by_key(|dir| dir.path.components().count());
    if let Some(dir) = cwd_dir
        && cwd != Path::new("/")
    {
        preopens.push(Preopen {
            host_path: cwd,
            guest_path: ".".to_string(),
            read_only: dir.read_only || root_read_only,
        });
    }
    Ok(preopens)
}

/// Checks, at create, that the annotation parses and that every directory it names is a
/// directory of the rootfs mounted at `rootfs` (symlinks resolved inside it). When the engine
/// cannot make a preopen read-only itself (`engine_read_only` false), a read-only preopen
/// must be read-only for the kernel: the whole rootfs (`root.readonly`) or a read-only mount
/// of the spec at that very directory.
pub fn check(spec: &Spec, rootfs: &Path, engine_read_only: bool) -> anyhow::Result<()> {
    let root_read_only = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    for preopen in for_spec(spec)? {
        if preopen.guest_path == "." {
            continue;
        }
        let host = safe_path::scoped_join(rootfs, &preopen.host_path).with_context(|| {
            format!(
                "annotation {PREOPENS_ANNOTATION}: resolve {} in the rootfs",
                preopen.guest_path
            )
        })?;
        if !host.is_dir() {
            bail!(
                "annotation {PREOPENS_ANNOTATION}: {} is not a directory of the container's rootfs",
                preopen.guest_path
            );
        }
        if preopen.read_only
            && !engine_read_only
            && !root_read_only
            && !read_only_mount(spec, &preopen.host_path)
        {
            bail!(
                "annotation {PREOPENS_ANNOTATION}: {} is asked read-only, which this engine cannot \
                 enforce in WASI; mount it read-only (a read-only volume) or make the rootfs \
                 read-only",
                preopen.guest_path
            );
        }
    }
    Ok(())
}

/// Whether the spec mounts something read-only at `dir`.
fn read_only_mount(spec: &Spec, dir: &Path) -> bool {
    spec.mounts().iter().flatten().any(|mount| {
        mount.destination().components().eq(dir.components())
            && mount
                .options()
                .iter()
                .flatten()
                .any(|option| option == "ro")
    })
}

/// One listed directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    pub path: PathBuf,
    pub read_only: bool,
}

/// Parses the annotation's value: comma-separated `/path[:ro|:rw]`; empty means none.
pub fn parse(value: &str) -> anyhow::Result<Vec<Dir>> {
    let mut dirs: Vec<Dir> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (path, read_only) = match entry.rsplit_once(':') {
            Some((path, "ro")) => (path, true),
            Some((path, "rw")) => (path, false),
            Some((_, mode)) => bail!("entry {entry:?}: unknown mode {mode:?} (use ro or rw)"),
            None => (entry, false),
        };
        // `:` would make the mode ambiguous (`/a:ro` as a name, or /a read-only).
        if path.contains(':') {
            bail!("entry {entry:?}: the path must not contain `:`");
        }
        // Entries are trimmed, so a name with a space at either end could not be written back.
        if path != path.trim() {
            bail!("entry {entry:?}: the path must not start or end with a space");
        }
        let path = Path::new(path);
        if !path.is_absolute() {
            bail!("entry {entry:?}: the path must be absolute");
        }
        if path.components().any(|c| c == Component::ParentDir) {
            bail!("entry {entry:?}: the path must not contain `..`");
        }
        // `Path::components` drops `.`, repeated and trailing slashes.
        let path: PathBuf = path.components().collect();
        if dirs.iter().any(|dir| dir.path == path) {
            bail!("entry {entry:?}: {} is listed twice", path.display());
        }
        dirs.push(Dir { path, read_only });
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;

    fn spec(annotation: Option<&str>, cwd: &str, read_only: bool) -> Spec {
        let spec = test_support::spec(&["/m.wasm"], &[], cwd, read_only);
        match annotation {
            Some(value) => test_support::annotated(spec, PREOPENS_ANNOTATION, value),
            None => spec,
        }
    }

    fn guest_paths(preopens: &[Preopen]) -> Vec<(&str, bool)> {
        preopens
            .iter()
            .map(|p| (p.guest_path.as_str(), p.read_only))
            .collect()
    }

    #[test]
    fn without_the_annotation_the_rootfs_and_the_cwd() {
        let preopens = for_spec(&spec(None, "/work", false)).unwrap();
        assert_eq!(guest_paths(&preopens), [("/", false), (".", false)]);
        assert_eq!(preopens[1].host_path, PathBuf::from("/work"));
        let preopens = for_spec(&spec(None, "/", true)).unwrap();
        assert_eq!(guest_paths(&preopens), [("/", true)]);
    }

    #[test]
    fn the_annotation_lists_the_only_directories() {
        let preopens = for_spec(&spec(Some("/data, /cache:ro,/./logs//:rw"), "/", false)).unwrap();
        assert_eq!(
            guest_paths(&preopens),
            [("/data", false), ("/cache", true), ("/logs", false)]
        );
        assert!(
            for_spec(&spec(Some(""), "/", false)).unwrap().is_empty(),
            "an empty list preopens nothing"
        );
        let preopens = for_spec(&spec(Some("/data"), "/", true)).unwrap();
        assert_eq!(
            guest_paths(&preopens),
            [("/data", true)],
            "root.readonly wins"
        );
    }

    #[test]
    fn the_cwd_only_inside_a_listed_directory() {
        let preopens = for_spec(&spec(Some("/data:ro"), "/data/sub", false)).unwrap();
        assert_eq!(guest_paths(&preopens), [("/data", true), (".", true)]);
        let preopens = for_spec(&spec(Some("/data"), "/database", false)).unwrap();
        assert_eq!(guest_paths(&preopens), [("/data", false)]);
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let cases = [
            ("data", "must be absolute"),
            ("/data/../etc", "must not contain"),
            ("/data:rx", "unknown mode \"rx\""),
            ("/a:b:ro", "must not contain `:`"),
            ("/ :rw", "must not start or end with a space"),
            ("/data,/data/", "listed twice"),
        ];
        for (value, reason) in cases {
            let err = format!(
                "{:#}",
                for_spec(&spec(Some(value), "/", false)).unwrap_err()
            );
            assert!(err.contains(PREOPENS_ANNOTATION), "{value}: {err}");
            assert!(err.contains(reason), "{value}: {err}");
        }
    }

    #[test]
    fn check_wants_directories_of_the_rootfs() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("data")).unwrap();
        std::fs::write(rootfs.path().join("file"), "x").unwrap();
        check(&spec(Some("/data"), "/", false), rootfs.path(), false).unwrap();
        check(&spec(None, "/", false), rootfs.path(), false).unwrap();
        for missing in ["/file", "/nope"] {
            let err = check(&spec(Some(missing), "/", false), rootfs.path(), true).unwrap_err();
            assert!(
                err.to_string()
                    .contains("is not a directory of the container's rootfs"),
                "{err}"
            );
        }
        // A symlink is resolved inside the rootfs, never on the host.
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), rootfs.path().join("escape")).unwrap();
        assert!(check(&spec(Some("/escape"), "/", false), rootfs.path(), true).is_err());
    }

    #[test]
    fn read_only_needs_the_engine_or_the_kernel() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("data")).unwrap();
        let ro = spec(Some("/data:ro"), "/", false);
        check(&ro, rootfs.path(), true).unwrap();
        let err = check(&ro, rootfs.path(), false).unwrap_err().to_string();
        assert!(err.contains("/data is asked read-only"), "{err}");
        check(&spec(Some("/data:ro"), "/", true), rootfs.path(), false).unwrap();
        let mut mounted = ro.clone();
        let mount = oci_spec::runtime::MountBuilder::default()
            .destination("/data/")
            .typ("bind")
            .source("/somewhere")
            .options(vec!["rbind".to_string(), "ro".to_string()])
            .build()
            .unwrap();
        mounted.set_mounts(Some(vec![mount]));
        check(&mounted, rootfs.path(), false).unwrap();
    }
}
