//! What a component's `files` let it read, read-only:
//!
//! - a directory of the image, shown as it is: `{ source = "assets", destination = "/assets" }`,
//!   or a glob taking a whole directory (`"static/**/*"`, seen at `/static`, where Spin places
//!   it);
//! - anything narrower (a single file, `"*.html"`, `{ source = "index.html", destination =
//!   "/index.html" }`) is copied at create, as Spin copies it, into a directory of the
//!   container's own rootfs snapshot, `/.spin-files/<component>`, seen by the component as its
//!   `/`.
//!
//! Globs match paths relative to the manifest's directory, `*` within one path segment, as
//! Spin's loader matches them. Symlinks in the image are not followed out of the rootfs, and
//! not at all while globbing.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use containerd_shim_wasm::Preopen;

use crate::manifest::{FileMount, Manifest};

/// Where a component's copied files are, in the container.
pub const STAGED_FILES: &str = "/.spin-files";

/// The preopens of component `id`'s `files`, copying what is narrower than a directory.
pub fn preopens(
    rootfs: &Path,
    manifest: &Manifest,
    id: &str,
    mounts: &[FileMount],
) -> anyhow::Result<Vec<Preopen>> {
    let field = format!("{}: component.{id}.files", manifest.file().display());
    let staged_in_container = PathBuf::from(format!("{STAGED_FILES}/{id}"));
    let staging = Staging {
        dir: in_rootfs(rootfs, &staged_in_container)
            .with_context(|| format!("{field}: the directory of its copied files"))?,
        used: false,
    };
    let mut staging = staging.cleared()?;
    let mut preopens = Vec::new();
    for mount in mounts {
        match mount {
            FileMount::Placement {
                source,
                destination,
            } => {
                if !destination.starts_with('/') {
                    bail!("{field}: destination {destination:?} must be an absolute path");
                }
                let in_container = manifest.resolve(source);
                let on_host = in_rootfs(rootfs, &in_container)
                    .with_context(|| format!("{field}: {source:?}"))?;
                if on_host.is_dir() {
                    preopens.push(read_only(in_container, destination.clone()));
                } else if on_host.is_file() {
                    staging.copy(&on_host, destination.trim_start_matches('/'))?;
                } else {
                    bail!(
                        "{field}: {source:?} ({}) is no file or directory of the image",
                        in_container.display()
                    );
                }
            }
            FileMount::Pattern(pattern) => {
                if let Some(dir) = whole_directory(pattern) {
                    let in_container = manifest.resolve(dir);
                    let on_host = in_rootfs(rootfs, &in_container)
                        .with_context(|| format!("{field}: {pattern:?}"))?;
                    if !on_host.is_dir() {
                        bail!(
                            "{field}: {pattern:?}: {} is not a directory of the image",
                            in_container.display()
                        );
                    }
                    preopens.push(read_only(in_container, format!("/{dir}")));
                    continue;
                }
                let matcher = globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| anyhow!("{field}: {pattern:?}: {e}"))?
                    .compile_matcher();
                let app_dir = in_rootfs(rootfs, manifest.app_dir())?;
                for relative in walk(&app_dir)? {
                    if matcher.is_match(&relative) {
                        staging.copy(&app_dir.join(&relative), &relative)?;
                    }
                }
            }
        }
    }
    if staging.used {
        preopens.push(read_only(staged_in_container, "/".to_string()));
    }
    Ok(preopens)
}

fn read_only(host_path: PathBuf, guest_path: String) -> Preopen {
    Preopen {
        host_path,
        guest_path,
        read_only: true,
    }
}

/// `dir` of `dir/**/*` or `dir/**` without glob characters of its own.
fn whole_directory(pattern: &str) -> Option<&str> {
    let dir = ["/**/*", "/**"]
        .iter()
        .find_map(|whole| pattern.strip_suffix(whole))?;
    let dir = dir.trim_start_matches("./").trim_end_matches('/');
    (!dir.is_empty() && !dir.contains(['*', '?', '[', '{'])).then_some(dir)
}

/// `path` of the container, on the host, symlinks kept inside the rootfs.
fn in_rootfs(rootfs: &Path, path: &Path) -> anyhow::Result<PathBuf> {
    safe_path::scoped_join(rootfs, path)
        .with_context(|| format!("resolve {} in the rootfs", path.display()))
}

/// The regular files under `dir`, relative to it (`/`-separated), symlinks not followed, the
/// staging directory left out.
fn walk(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((host, relative)) = pending.pop() {
        let entries =
            std::fs::read_dir(&host).with_context(|| format!("list {}", host.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() && format!("/{path}") != STAGED_FILES {
                pending.push((entry.path(), path));
            } else if kind.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The directory files are copied into.
struct Staging {
    dir: PathBuf,
    used: bool,
}

impl Staging {
    /// Empty, as a container created again starts from what its manifest says.
    fn cleared(self) -> anyhow::Result<Self> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(self),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self),
            Err(e) => Err(anyhow!("remove {}: {e}", self.dir.display())),
        }
    }

    /// Copies the image's file `from` to `relative` under the staging directory.
    fn copy(&mut self, from: &Path, relative: &str) -> anyhow::Result<()> {
        let to = self.dir.join(relative);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).with_context(|| {
                format!(
                    "create {} (a read-only rootfs cannot take the copies of `files`: give a \
                     directory instead)",
                    parent.display()
                )
            })?;
        }
        std::fs::copy(from, &to)
            .with_context(|| format!("copy {} to {}", from.display(), to.display()))?;
        self.used = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest;

    fn manifest_with_files(files: &str) -> Manifest {
        manifest::parse(
            &format!(
                "spin_manifest_version = 2\n[application]\nname = \"f\"\n\
                 [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\
                 [component.web]\nsource = \"web.wasm\"\nfiles = {files}\n"
            ),
            Path::new("/spin.toml"),
        )
        .unwrap()
    }

    fn preopens_of(rootfs: &Path, files: &str) -> anyhow::Result<Vec<Preopen>> {
        let manifest = manifest_with_files(files);
        let mounts = manifest.component("web").unwrap().files().to_vec();
        preopens(rootfs, &manifest, "web", &mounts)
    }

    fn image() -> tempfile::TempDir {
        let rootfs = tempfile::tempdir().unwrap();
        for (path, content) in [
            ("index.html", "index"),
            ("about.html", "about"),
            ("static/a.css", "a"),
            ("static/img/b.png", "b"),
            ("notes/one.txt", "1"),
            ("notes/deep/two.txt", "2"),
        ] {
            let path = rootfs.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        rootfs
    }

    #[test]
    fn directories_are_shown_as_they_are() {
        let rootfs = image();
        let preopens = preopens_of(
            rootfs.path(),
            r#"["static/**/*", { source = "notes", destination = "/n" }]"#,
        )
        .unwrap();
        let seen: Vec<(&Path, &str)> = preopens
            .iter()
            .map(|p| (p.host_path.as_path(), p.guest_path.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Path::new("/static"), "/static"),
                (Path::new("/notes"), "/n")
            ]
        );
        assert!(preopens.iter().all(|p| p.read_only));
        assert!(!rootfs.path().join(".spin-files").exists());
    }

    #[test]
    fn narrower_globs_and_files_are_copied_into_the_components_root() {
        let rootfs = image();
        let preopens = preopens_of(
            rootfs.path(),
            r#"["*.html", "notes/*.txt", { source = "static/a.css", destination = "/css/site.css" }]"#,
        )
        .unwrap();
        assert_eq!(preopens.len(), 1);
        assert_eq!(preopens[0].host_path, Path::new("/.spin-files/web"));
        assert_eq!(preopens[0].guest_path, "/");
        let staged = rootfs.path().join(".spin-files/web");
        assert_eq!(
            walk(&staged).unwrap(),
            ["about.html", "css/site.css", "index.html", "notes/one.txt"]
        );
        // A second create starts from what the manifest says.
        preopens_of(rootfs.path(), r#"["index.html"]"#).unwrap();
        assert_eq!(walk(&staged).unwrap(), ["index.html"]);
    }

    #[test]
    fn missing_sources_and_relative_destinations_are_refused() {
        let rootfs = image();
        let err = preopens_of(
            rootfs.path(),
            r#"[{ source = "nope", destination = "/x" }]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("component.web.files: \"nope\""), "{err}");
        let err = preopens_of(
            rootfs.path(),
            r#"[{ source = "notes", destination = "x" }]"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must be an absolute path"), "{err}");
        let err = preopens_of(rootfs.path(), r#"["missing/**/*"]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
