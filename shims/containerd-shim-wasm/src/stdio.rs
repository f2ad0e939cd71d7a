//! The task's stdio as containerd hands it over: paths of FIFOs (or plain files) that the
//! container's process gets as its descriptors 0, 1 and 2.
//!
//! The process writes to and reads from the FIFOs directly (no copying through the shim), so
//! output is complete once the process and its children are gone, and no shim thread sits in
//! the data path. The shim itself only keeps a
//! writer on the stdin FIFO: that holds stdin open while clients come and go, and `CloseIO`
//! drops it so the module sees EOF once the client has closed its end too (as runc's shim does).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use serde::{Deserialize, Serialize};

/// Where the task's stdio goes. Empty means none (`/dev/null`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StdioPaths {
    pub stdin: Option<PathBuf>,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
}

impl StdioPaths {
    /// From the strings of a Create request, where "" means "not connected".
    pub fn from_request(stdin: &str, stdout: &str, stderr: &str) -> Self {
        let path = |s: &str| (!s.is_empty()).then(|| PathBuf::from(s));
        Self {
            stdin: path(stdin),
            stdout: path(stdout),
            stderr: path(stderr),
        }
    }

    /// Opens the three descriptors for the container's process.
    pub fn open_for_process(&self) -> io::Result<[File; 3]> {
        Ok([
            open_reader(self.stdin.as_deref())?,
            open_writer(self.stdout.as_deref())?,
            open_writer(self.stderr.as_deref())?,
        ])
    }
}

/// The shim's own writers on the task's FIFOs (see the module docs).
///
/// * stdin: held until `CloseIO` or delete, so the process sees EOF only once the client is
///   done.
/// * stdout and stderr: a FIFO's buffered data is dropped when its last descriptor closes. A
///   process that writes and exits before the client has opened its read end (an exec that
///   prints one line, a client still setting up) would lose its output; these writers keep it
///   until a reader is there after the exit, or until delete.
#[derive(Debug, Default)]
pub struct StdioHolder {
    stdin: Option<File>,
    outputs: Vec<(PathBuf, File)>,
}

/// How long output whose reader has not come yet is kept after the process exited, when
/// nobody deletes the process earlier.
const UNREAD_OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl StdioHolder {
    pub fn open(stdio: &StdioPaths) -> io::Result<Self> {
        let mut holder = Self::default();
        if let Some(path) = stdio.stdin.as_deref() {
            // O_RDWR on a FIFO never blocks, whether or not the client has opened its end yet.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| with_path(e, "open stdin", path))?;
            holder.stdin = Some(file);
        }
        for path in [stdio.stdout.as_deref(), stdio.stderr.as_deref()] {
            let Some(path) = strip_scheme(path)? else {
                continue;
            };
            if is_fifo(path) {
                holder.outputs.push((path.to_owned(), pure_writer(path)?));
            }
        }
        Ok(holder)
    }

    /// Lets the reader see EOF once every other writer is gone.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// After the process exited: lets go of the outputs that a client reads now (it then
    /// sees EOF), and of the others once a reader came or [`UNREAD_OUTPUT_GRACE`] passed.
    pub fn release_outputs(&mut self) {
        let (read, unread): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outputs)
            .into_iter()
            .partition(|(path, _)| has_reader(path));
        drop(read);
        if unread.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("unread-output".into())
            .spawn(move || {
                let deadline = std::time::Instant::now() + UNREAD_OUTPUT_GRACE;
                let mut unread = unread;
                while !unread.is_empty() && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    unread.retain(|(path, _)| !has_reader(path));
                }
            });
    }
}

/// A write-only descriptor on a FIFO, opened without waiting for a reader: a read-write one
/// would count as a reader itself and hide whether a client is there.
fn pure_writer(path: &Path) -> io::Result<File> {
    // While this is open there is a reader, so the non-blocking write-only open succeeds.
    let _reader = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| with_path(e, "open", path))?;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| with_path(e, "open", path))
}

/// Whether anything has the FIFO open for reading (a write-only, non-blocking open fails with
/// ENXIO otherwise).
fn has_reader(path: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok()
}

fn open_reader(path: Option<&Path>) -> io::Result<File> {
    let Some(path) = strip_scheme(path)? else {
        return File::open("/dev/null");
    };
    // O_NONBLOCK: a FIFO's read end would otherwise wait for a writer, and there is none
    // if CloseIO came first (ctr closes an exec's stdin before starting it); the process
    // then reads EOF at once, as it should. Reads block again afterwards.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| with_path(e, "open stdin", path))?;
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(|e| with_path(e.into(), "make stdin blocking", path))?;
    Ok(file)
}

fn open_writer(path: Option<&Path>) -> io::Result<File> {
    let Some(path) = strip_scheme(path)? else {
        return OpenOptions::new().write(true).open("/dev/null");
    };
    if !is_fifo(path) {
        return OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| with_path(e, "open", path));
    }
    // Read-write, as runc's shim effectively behaves: the open never blocks, and when the
    // client goes away (`ctr run -d`, a containerd restart) writes keep going into the pipe
    // instead of failing with EPIPE; a client that reopens the FIFO reads what was buffered.
    // The client still sees EOF once the process (the only other holder) is gone.
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| with_path(e, "open", path))
}

/// containerd may send `fifo://`/`file://` URIs; `binary://` loggers are not supported.
fn strip_scheme(path: Option<&Path>) -> io::Result<Option<&Path>> {
    let Some(path) = path else { return Ok(None) };
    let text = path.to_str().unwrap_or_default();
    if let Some((scheme, rest)) = text.split_once("://") {
        return match scheme {
            "fifo" | "file" => Ok(Some(Path::new(rest))),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "stdio {text}: the {scheme}:// scheme is not supported (use a FIFO or file path)"
                ),
            )),
        };
    }
    Ok(Some(path))
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::Mode;
    use nix::unistd::mkfifo;
    use std::io::{Read, Write};

    #[test]
    fn stdin_reaches_eof_only_after_close_io() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdin");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths::from_request(fifo.to_str().unwrap(), "", "");

        let mut holder = StdioHolder::open(&paths).unwrap();
        let [mut stdin, _, _] = paths.open_for_process().unwrap();
        let mut client = OpenOptions::new().write(true).open(&fifo).unwrap();
        client.write_all(b"data").unwrap();
        drop(client);

        let mut buf = [0u8; 4];
        stdin.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"data");
        holder.close_stdin();
        assert_eq!(stdin.read(&mut buf).unwrap(), 0, "EOF after CloseIO");
    }

    #[test]
    fn stdin_closed_before_the_process_opens_it_reads_as_eof() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdin");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths::from_request(fifo.to_str().unwrap(), "", "");
        let mut holder = StdioHolder::open(&paths).unwrap();
        holder.close_stdin();
        let [mut stdin, _, _] = paths.open_for_process().unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(stdin.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn output_waits_for_a_reader_that_comes_after_the_exit() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths::from_request("", fifo.to_str().unwrap(), "");
        let mut holder = StdioHolder::open(&paths).unwrap();
        let [_, mut out, _] = paths.open_for_process().unwrap();
        out.write_all(b"last words").unwrap();
        drop(out); // the process exited
        holder.release_outputs();
        let mut late = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut got = [0u8; 10];
        late.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"last words");
        // Once the reader is there, the holder lets go and the reader sees EOF.
        fcntl(late.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let mut rest = Vec::new();
        late.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn writers_go_to_fifos_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let log = dir.path().join("err.log");
        let paths = StdioPaths::from_request(
            "",
            fifo.to_str().unwrap(),
            &format!("file://{}", log.display()),
        );
        let [_, mut out, mut err] = paths.open_for_process().unwrap();
        out.write_all(b"out").unwrap();
        err.write_all(b"err").unwrap();
        drop(out);
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "out");
        assert_eq!(std::fs::read_to_string(log).unwrap(), "err");
    }

    #[test]
    fn output_survives_a_client_that_went_away() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("stdout");
        mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let paths = StdioPaths::from_request("", fifo.to_str().unwrap(), "");
        let [_, mut out, _] = paths.open_for_process().unwrap();
        out.write_all(b"nobody listens").unwrap();
        let mut late = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut buf = [0u8; 14];
        late.read_exact(&mut buf).unwrap();
        assert_eq!(
            &buf, b"nobody listens",
            "a reconnecting client reads the buffer"
        );
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let paths = StdioPaths::from_request("", "binary:///usr/bin/logger", "");
        let err = paths.open_for_process().unwrap_err();
        assert!(
            err.to_string()
                .contains("binary:// scheme is not supported"),
            "{err}"
        );
    }
}
