//! How the shim runs its helper processes (see `helper/`): through the zygote while it is
//! there, else by re-executing the shim binary with [`HELPER_ARG`]. Either way the shim sends
//! one [`HelperRequest`], reads one [`Created`] answer, and waits until the helper is gone, so
//! that the process it started has become the shim's child.

use std::fs::File;
use std::io::{BufRead, BufReader, IoSlice, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use log::warn;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, sendmsg, socketpair,
};

use crate::helper::zygote::{ZYGOTE_ARG, receive_fd};
use crate::request::{Created, HELPER_ARG, HelperRequest, Kind};

/// How the shim runs helpers: through the zygote while it is there, else by re-executing the
/// shim binary.
pub struct Helpers {
    shim_log: File,
    zygote: Option<Zygote>,
    /// Set when the zygote failed once: a dead or stuck zygote is not asked again (a stuck one
    /// would cost every request the wait for its worker).
    zygote_failed: AtomicBool,
}

impl Helpers {
    /// Starts the zygote in `working_dir`; without one every helper is re-executed.
    pub fn start(shim_log: File, working_dir: &Path) -> Helpers {
        let zygote = Zygote::spawn(working_dir, &shim_log)
            .inspect_err(|e| warn!("start the helper zygote: {e:#}; helpers are re-executed"))
            .ok();
        Helpers {
            shim_log,
            zygote,
            zygote_failed: AtomicBool::new(false),
        }
    }

    /// Runs `request` in a helper and waits for its answer: the pid of the process it
    /// started (a child of the shim once the helper is gone) and what it runs.
    pub fn run(&self, request: &HelperRequest) -> anyhow::Result<(i32, Kind)> {
        let json = serde_json::to_string(request)?;
        let zygote = self
            .zygote
            .as_ref()
            .filter(|_| !self.zygote_failed.load(Ordering::Relaxed));
        if let Some(zygote) = zygote {
            match zygote.worker() {
                Ok(Worker { mut stream, pidfd }) => {
                    send_request(&mut stream, &json)
                        .context("send the request to the zygote's worker")?;
                    return answer(request, stream, Some(pidfd));
                }
                Err(e) => {
                    self.zygote_failed.store(true, Ordering::Relaxed);
                    warn!(
                        id = request.container_id();
                        "{}: {e:#}; re-executing the helper instead, from now on",
                        request.subject()
                    );
                }
            }
        }
        self.run_reexecuted(request, &json)
    }

    fn run_reexecuted(&self, request: &HelperRequest, json: &str) -> anyhow::Result<(i32, Kind)> {
        let exe = std::env::current_exe().context("locate the shim binary")?;
        let mut child = Command::new(&exe)
            // Not the shim's working directory, which another thread's libcontainer start
            // may have changed for a moment (see cwd.rs).
            .current_dir(request.working_dir())
            .arg(HELPER_ARG)
            .arg(json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                self.shim_log
                    .try_clone()
                    .context("duplicate the shim log")?,
            )
            .spawn()
            .with_context(|| format!("run {} {HELPER_ARG}", exe.display()))?;
        // The shim's reaper collects the helper; its pidfd tells when it is gone, and so
        // when the container's init process has become the shim's child.
        let helper = crate::pidfd::pidfd_open(child.id() as i32).ok();
        let stdout = child.stdout.take().expect("stdout is piped");
        answer(request, stdout, helper)
    }
}

/// Reads a helper's answer line and waits until the helper (`helper`, a pidfd) is gone.
fn answer(
    request: &HelperRequest,
    output: impl std::io::Read,
    helper: Option<std::os::fd::OwnedFd>,
) -> anyhow::Result<(i32, Kind)> {
    let mut line = String::new();
    BufReader::new(output)
        .read_line(&mut line)
        .context("read the helper's answer")?;
    if let Some(helper) = helper {
        crate::pidfd::wait_gone(helper).context("wait for the helper to exit")?;
    }
    match serde_json::from_str::<Created>(&line) {
        Ok(Created::Ok { pid, kind, phases }) => {
            for phase in phases {
                crate::shim::telemetry::phase(&phase.name, phase.start, phase.end, Vec::new());
            }
            Ok((pid, kind))
        }
        Ok(Created::Err { message }) => Err(anyhow!(message)),
        Err(_) => bail!(
            "the helper for {} died without an answer (see the shim log)",
            request.subject()
        ),
    }
}

/// How long the shim waits for a new worker to report: forking a small process takes far
/// less, so running out means the zygote is stuck and the shim falls back.
const WORKER_START_TIMEOUT: Duration = Duration::from_secs(5);

/// Shim side: the zygote's end of the request socket.
pub struct Zygote {
    socket: Mutex<OwnedFd>,
}

/// Shim side: a worker forked for one request, not yet told what to do.
pub struct Worker {
    pub stream: UnixStream,
    /// The worker's own pidfd: it is gone once this polls readable.
    pub pidfd: OwnedFd,
}

impl Zygote {
    /// Starts the zygote: the shim binary with [`ZYGOTE_ARG`], the request socket as its
    /// stdin and the shim log as its stderr (the workers' log).
    pub fn spawn(working_dir: &Path, shim_log: &File) -> anyhow::Result<Zygote> {
        let exe = std::env::current_exe().context("locate the shim binary")?;
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("create the zygote's socket pair")?;
        Command::new(&exe)
            .current_dir(working_dir)
            .arg(ZYGOTE_ARG)
            .arg(std::process::id().to_string())
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(shim_log.try_clone().context("duplicate the shim log")?)
            .spawn()
            .with_context(|| format!("run {} {ZYGOTE_ARG}", exe.display()))?;
        // The shim's reaper collects it when it ends.
        Ok(Zygote {
            socket: Mutex::new(ours),
        })
    }

    /// Asks the zygote for a new worker.
    pub fn worker(&self) -> anyhow::Result<Worker> {
        let (stream, theirs) = UnixStream::pair().context("create a worker's socket pair")?;
        {
            let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner());
            let fds = [theirs.as_raw_fd()];
            sendmsg::<()>(
                socket.as_raw_fd(),
                &[IoSlice::new(b"w")],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .context("hand a request socket to the zygote")?;
        }
        drop(theirs);
        stream
            .set_read_timeout(Some(WORKER_START_TIMEOUT))
            .context("set a timeout on the worker's socket")?;
        let pidfd = receive_fd(&stream)
            .context("the zygote's worker did not report")?
            .ok_or_else(|| anyhow!("the zygote closed the request socket without a worker"))?;
        stream
            .set_read_timeout(None)
            .context("clear the timeout on the worker's socket")?;
        Ok(Worker { stream, pidfd })
    }
}

/// Writes the request and closes the writing side, so the worker reads it to the end.
pub fn send_request(stream: &mut UnixStream, json: &str) -> std::io::Result<()> {
    stream.write_all(json.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)
}
