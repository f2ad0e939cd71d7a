//! Reading the task's FIFOs the way a containerd client does, without ctr: ctr 1.6 cancels
//! its copying when a process exits, so a fast exec process can lose its output there (under
//! runc too); a test that reads the FIFO to its end sees all of it.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use nix::sys::stat::Mode;
use nix::unistd::mkfifo;

/// Makes a FIFO at `path` (replacing what is there).
pub fn make_fifo(path: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_file(path);
    mkfifo(path, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("mkfifo {}", path.display()))?;
    Ok(path.to_owned())
}

/// Reads a FIFO to its end in a thread. The reader holds a writer of its own until
/// [`Reader::finish`], so an EOF means the task's side has closed too, never "not yet opened".
pub struct FifoReader {
    text: Arc<Mutex<Vec<u8>>>,
    thread: JoinHandle<()>,
    keep_open: File,
}

impl FifoReader {
    pub fn start(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        let keep_open = std::fs::OpenOptions::new().write(true).open(path)?;
        // Reads block from here on.
        nix::fcntl::fcntl(
            file.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )?;
        let text = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&text);
        let thread = std::thread::spawn(move || {
            let mut file = file;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = file.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Ok(Self {
            text,
            thread,
            keep_open,
        })
    }

    /// What has been written so far.
    pub fn so_far(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// Everything written, once the task's side has closed (call after the task exited).
    pub fn finish(self) -> String {
        drop(self.keep_open);
        let _ = self.thread.join();
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }
}
