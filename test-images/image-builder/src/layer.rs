//! The image's one file-system layer: a tree of files, directories and symlinks, written as an
//! uncompressed tar with every parent directory present and a fixed order.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::tarball::DeterministicTar;

/// Mode of the directories the layer creates implicitly for files' parents.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// One entry of the layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    File { content: Vec<u8>, mode: u32 },
    Dir { mode: u32 },
    Symlink { target: String },
}

/// The layer's entries keyed by their path as given to the builder (absolute or not).
#[derive(Debug, Clone, Default)]
pub(crate) struct LayerTree {
    nodes: Vec<(String, Node)>,
}

impl LayerTree {
    /// Adds or replaces the entry at `path` (a later entry for the same path wins).
    pub(crate) fn insert(&mut self, path: impl Into<String>, node: Node) {
        self.nodes.push((path.into(), node));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Writes the layer tar: paths are relative to the root, parents come before children
    /// (sorted order guarantees it, as a parent's path is a prefix of its children's).
    pub(crate) fn to_tar(&self) -> Result<Vec<u8>> {
        let mut tree: BTreeMap<String, Node> = BTreeMap::new();
        for (path, node) in &self.nodes {
            tree.insert(normalize(path)?, node.clone());
        }
        let explicit: Vec<String> = tree.keys().cloned().collect();
        for path in &explicit {
            for parent in ancestors(path) {
                match tree.get(parent) {
                    None => {
                        tree.insert(
                            parent.to_owned(),
                            Node::Dir {
                                mode: IMPLICIT_DIR_MODE,
                            },
                        );
                    }
                    Some(Node::Dir { .. }) => {}
                    Some(_) => bail!("/{parent} is not a directory but /{path} is inside it"),
                }
            }
        }

        let mut tar = DeterministicTar::new();
        for (path, node) in &tree {
            match node {
                Node::File { content, mode } => tar.file(path, content, *mode)?,
                Node::Dir { mode } => tar.dir(path, *mode)?,
                Node::Symlink { target } => tar.symlink(path, target)?,
            }
        }
        tar.finish()
    }
}

/// `"/data//x.txt"` -> `"data/x.txt"`; rejects paths that are empty, the root, or use `.`/`..`.
fn normalize(path: &str) -> Result<String> {
    let parts: Vec<&str> = path.split('/').filter(|part| !part.is_empty()).collect();
    if parts.is_empty() {
        bail!("image path {path:?} does not name anything below the root");
    }
    if parts.iter().any(|part| *part == "." || *part == "..") {
        bail!("image path {path:?} must not contain . or .. components");
    }
    Ok(parts.join("/"))
}

/// `"a/b/c"` -> `["a", "a/b"]`
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(|(index, _)| &path[..index])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(tar: &[u8]) -> Vec<(String, tar::EntryType, u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let mut content = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().to_str().unwrap().to_owned(),
                    header.entry_type(),
                    header.mode().unwrap(),
                    content,
                )
            })
            .collect()
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("/a//b/").unwrap(), "a/b");
        assert_eq!(normalize("a").unwrap(), "a");
        for bad in ["", "/", "//", "/a/../b", "./a"] {
            assert!(normalize(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn adds_parent_directories_in_sorted_order() {
        let mut tree = LayerTree::default();
        tree.insert(
            "/z.wasm",
            Node::File {
                content: b"z".to_vec(),
                mode: 0o755,
            },
        );
        tree.insert(
            "/a/b/c.txt",
            Node::File {
                content: b"c".to_vec(),
                mode: 0o600,
            },
        );
        tree.insert(
            "/a-b",
            Node::Symlink {
                target: "a/b".into(),
            },
        );
        tree.insert("/a", Node::Dir { mode: 0o700 });
        use tar::EntryType::{Directory, Regular, Symlink};
        assert_eq!(
            listing(&tree.to_tar().unwrap()),
            [
                ("a/".into(), Directory, 0o700, vec![]),
                ("a-b".into(), Symlink, 0o777, vec![]),
                ("a/b/".into(), Directory, IMPLICIT_DIR_MODE, vec![]),
                ("a/b/c.txt".into(), Regular, 0o600, b"c".to_vec()),
                ("z.wasm".into(), Regular, 0o755, b"z".to_vec()),
            ]
        );
    }

    #[test]
    fn later_entry_for_the_same_path_wins() {
        let mut tree = LayerTree::default();
        tree.insert(
            "/f",
            Node::File {
                content: b"old".to_vec(),
                mode: 0o644,
            },
        );
        tree.insert(
            "f",
            Node::File {
                content: b"new".to_vec(),
                mode: 0o644,
            },
        );
        let entries = listing(&tree.to_tar().unwrap());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].3, b"new");
    }

    #[test]
    fn rejects_a_file_used_as_a_directory() {
        let mut tree = LayerTree::default();
        tree.insert(
            "/f",
            Node::File {
                content: vec![],
                mode: 0o644,
            },
        );
        tree.insert(
            "/f/g",
            Node::File {
                content: vec![],
                mode: 0o644,
            },
        );
        let error = tree.to_tar().unwrap_err().to_string();
        assert_eq!(error, "/f is not a directory but /f/g is inside it");
    }
}
