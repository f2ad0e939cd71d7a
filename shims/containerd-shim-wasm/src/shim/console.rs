//! A terminal for a process (`process.terminal`, `ctr run -t`, `docker run -t`), as runc's
//! shim does it: the container's init creates a pseudo-terminal, its slave becomes the
//! process's stdio (a Wasm module's too), and the master comes back to the shim through a
//! console socket. The shim copies the task's stdin FIFO into the master and the master into
//! the stdout FIFO (a terminal has no separate stderr), and `ResizePty` sets its size.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use anyhow::Context;
use log::warn;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::stdio::StdioPaths;

/// How long the shim waits for the master once the container's init has been set up (it is
/// sent before then, so this only bounds a broken init).
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening socket that the container's init sends the pty master to. The path is kept
/// short (a Unix socket path has at most 107 bytes; bundle paths can be longer).
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub fn bind() -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "wasm-shim-pty-{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
        Ok(Self { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master, once the helper that connected has set the process up.
    pub fn receive_master(&self) -> io::Result<OwnedFd> {
        self.listener.set_nonblocking(true)?;
        let (stream, _) = self.listener.accept().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("no terminal came back on {}: {e}", self.path.display()),
            )
        })?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(RECEIVE_TIMEOUT))?;
        let mut name = [0u8; 4096];
        let mut iov = [io::IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let message = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| io::Error::other(format!("receive the terminal: {e}")))?;
        for control in message.cmsgs().map_err(io::Error::other)? {
            if let ControlMessageOwned::ScmRights(fds) = control
                && let Some(&fd) = fds.first()
            {
                // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        Err(io::Error::other(
            "the container sent no terminal descriptor",
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The shim's end of a process's terminal.
pub struct Console {
    master: File,
    /// Says when all output has been copied.
    output_done: Mutex<mpsc::Receiver<()>>,
}

impl Console {
    /// Starts copying between the master and the task's stdio FIFOs.
    pub fn start(master: OwnedFd, stdio: &StdioPaths, name: &str) -> io::Result<Self> {
        let master = File::from(master);
        let [stdin, stdout, _] = stdio.open_for_process()?;
        let (done, output_done) = mpsc::channel();
        copy_thread(
            format!("{name}: terminal output"),
            master.try_clone()?,
            stdout,
            Some(done),
        )?;
        if stdio.stdin.is_some() {
            // Ends with the stdin FIFO (CloseIO) or the terminal; nobody waits for it.
            let input = master.try_clone()?;
            copy_thread(format!("{name}: terminal input"), stdin, input, None)?;
        }
        Ok(Self {
            master,
            output_done: Mutex::new(output_done),
        })
    }

    pub fn resize(&self, width: u16, height: u16) -> io::Result<()> {
        let size = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        Ok(rustix::termios::tcsetwinsize(&self.master, size)?)
    }

    /// Waits, at most `timeout`, until everything the process wrote has reached the stdout
    /// FIFO: the master reads EOF (EIO) once every holder of the terminal has closed it, which
    /// a background child that keeps it open may delay.
    pub fn drain(&self, timeout: Duration) {
        let _ = self.output_done.lock().unwrap().recv_timeout(timeout);
    }
}

/// Copies until EOF or an error; then drops both ends and says so on `done`.
fn copy_thread(
    name: String,
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    done: Option<mpsc::Sender<()>>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Err(e) = to.write_all(&buf[..n]) {
                            warn!("{name}: {e}");
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EIO: the other side of the terminal is closed.
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                    Err(e) => {
                        warn!("{name}: {e}");
                        break;
                    }
                }
            }
            drop(to);
            if let Some(done) = done {
                let _ = done.send(());
            }
        })?;
    Ok(())
}

/// The terminal the process's init sent to `socket`, connected to the task's stdio.
pub fn connect_console(
    socket: &ConsoleSocket,
    stdio: &StdioPaths,
    name: &str,
) -> anyhow::Result<Console> {
    let master = socket
        .receive_master()
        .with_context(|| format!("{name}: terminal"))?;
    Console::start(master, stdio, name).with_context(|| format!("{name}: connect the terminal"))
}
