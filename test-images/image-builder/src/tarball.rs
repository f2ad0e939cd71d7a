//! A tar writer whose output depends only on the entries given, never on the machine, the clock
//! or the user: the same image input must always give the same layer and manifest digests.

use anyhow::{Context, Result};
use tar::{Builder, EntryType, Header};

/// Writes tar entries with owner 0:0, mtime 0 and the given modes, in the order they are added.
pub(crate) struct DeterministicTar {
    builder: Builder<Vec<u8>>,
}

impl DeterministicTar {
    pub(crate) fn new() -> Self {
        Self {
            builder: Builder::new(Vec::new()),
        }
    }

    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut header = header(EntryType::Directory, mode, 0);
        self.builder
            .append_data(&mut header, format!("{path}/"), std::io::empty())
            .with_context(|| format!("cannot add directory {path} to a tar"))
    }

    pub(crate) fn file(&mut self, path: &str, content: &[u8], mode: u32) -> Result<()> {
        let mut header = header(EntryType::Regular, mode, content.len() as u64);
        self.builder
            .append_data(&mut header, path, content)
            .with_context(|| format!("cannot add file {path} to a tar"))
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        let mut header = header(EntryType::Symlink, 0o777, 0);
        self.builder
            .append_link(&mut header, path, target)
            .with_context(|| format!("cannot add symlink {path} -> {target} to a tar"))
    }

    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        self.builder
            .into_inner()
            .context("cannot finish writing a tar")
    }
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_order_modes_and_zero_metadata() {
        let long_name = format!("{}/file", "d".repeat(120));
        let mut tar = DeterministicTar::new();
        tar.dir("d", 0o700).unwrap();
        tar.file("d/f", b"abc", 0o640).unwrap();
        tar.symlink("d/l", "f").unwrap();
        tar.file(&long_name, b"", 0o644).unwrap();
        let bytes = tar.finish().unwrap();

        let mut archive = tar::Archive::new(bytes.as_slice());
        let seen: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                assert_eq!(header.mtime().unwrap(), 0);
                assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
                (
                    entry.path().unwrap().to_str().unwrap().to_owned(),
                    header.entry_type(),
                    header.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("d/".to_owned(), EntryType::Directory, 0o700),
                ("d/f".to_owned(), EntryType::Regular, 0o640),
                ("d/l".to_owned(), EntryType::Symlink, 0o777),
                (long_name, EntryType::Regular, 0o644),
            ]
        );
    }
}
