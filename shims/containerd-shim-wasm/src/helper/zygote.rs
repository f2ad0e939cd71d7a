//! The pre-started helper ("zygote") that forks a worker for each create and exec.
//!
//! Re-executing the shim binary for every helper costs an `execve` of a large binary, its
//! dynamic linking and the engine's start, all on the container's critical path. Instead the
//! shim starts one zygote when it starts serving: the shim binary re-executed with
//! [`ZYGOTE_ARG`], single-threaded for its whole life, holding an engine made once. For each
//! request the shim hands it one end of a fresh socket pair; the zygote forks a child that
//! forks the worker and exits at once, so the worker is re-parented to the shim (the child
//! subreaper), exactly like the re-executed helper. The worker sends its own pidfd, reads the
//! request, runs [`crate::helper::run::helper_main`] with the zygote's engine and answers on the
//! same socket. Forking is safe because the zygote never has a second thread.
//!
//! The zygote ends when the shim closes its socket (or dies: `PR_SET_PDEATHSIG`). If it fails
//! once (gone, or no worker in time), the shim re-executes the helper from then on.

use std::fs::File;
use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork};

use crate::config::EngineConfig;
use crate::engine::Engine;

/// The first argument that turns the shim binary into the zygote; the second is the shim's
/// pid, which also tells a leaked zygote apart (its shim is gone).
pub const ZYGOTE_ARG: &str = "helper-zygote";

/// The zygote's process name (`/proc/PID/comm`), and its workers' until libcontainer renames
/// the container's processes: forks keep the zygote's command line, so only the name tells
/// the zygote itself apart.
const ZYGOTE_NAME: &std::ffi::CStr = c"helper-zygote";
const WORKER_NAME: &std::ffi::CStr = c"helper-worker";

/// Zygote side: the whole life of the zygote process.
pub fn zygote_main<E: Engine>(shim_pid: &str) -> ! {
    // SAFETY: prctl with these arguments only sets a flag and the name of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::prctl(libc::PR_SET_NAME, ZYGOTE_NAME.as_ptr());
    }
    if std::os::unix::process::parent_id().to_string() != shim_pid {
        // The shim died before the flag was set.
        std::process::exit(0);
    }
    // With the options containerd gave `start`; a failure here is reported by the worker,
    // which then makes its own engine.
    let engine = crate::config::from_start_environment()
        .engine_config()
        .ok()
        .and_then(|config| Some((E::new(&config).ok()?, config)));
    // SAFETY: descriptor 0 is the request socket the shim gave us, owned by nobody else.
    let requests = unsafe { OwnedFd::from_raw_fd(0) };
    loop {
        let request_socket = match receive_fd(&requests) {
            Ok(Some(fd)) => fd,
            // The shim closed its end: it is exiting.
            Ok(None) => std::process::exit(0),
            Err(e) => {
                eprintln!("{ZYGOTE_ARG}: receive a request: {e}");
                std::process::exit(1);
            }
        };
        if let Err(e) = super::threads::ensure_single_threaded(E::NAME) {
            // Closing the request socket tells the shim, which re-executes helpers from now on.
            eprintln!("{ZYGOTE_ARG}: {e:#}");
            std::process::exit(1);
        }
        // SAFETY: this process has a single thread (checked above), so the child may do
        // anything.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                // SAFETY: still single-threaded.
                match unsafe { fork() } {
                    Ok(ForkResult::Child) => {
                        // Descriptor 0: the worker replaces it with /dev/null; closing it
                        // first would let the next open take 0, which is standard input.
                        std::mem::forget(requests);
                        worker_main(request_socket, engine)
                    }
                    // The worker is re-parented to the shim when this process exits.
                    Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
                    // Closing the request socket tells the shim.
                    Err(_) => unsafe { libc::_exit(1) },
                }
            }
            Ok(ForkResult::Parent { child }) => {
                let _ = waitpid(child, None);
            }
            Err(e) => eprintln!("{ZYGOTE_ARG}: fork a worker: {e}"),
        }
        drop(request_socket);
    }
}

/// Worker side: report, read the request, then be the helper with the zygote's engine.
fn worker_main<E: Engine>(socket: OwnedFd, engine: Option<(E, EngineConfig)>) -> ! {
    // SAFETY: prctl with these arguments only sets the name of this process.
    unsafe { libc::prctl(libc::PR_SET_NAME, WORKER_NAME.as_ptr()) };
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("{ZYGOTE_ARG} worker: {what}: {e}");
        std::process::exit(1)
    };
    let pidfd = crate::pidfd::pidfd_open(std::process::id() as i32)
        .unwrap_or_else(|e| fail("open its own pidfd", &e));
    let fds = [pidfd.as_raw_fd()];
    if let Err(e) = sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(b"p")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    ) {
        fail("send its pidfd", &e);
    }
    drop(pidfd);
    let mut stream = UnixStream::from(socket);
    let mut request = String::new();
    if let Err(e) = stream.read_to_string(&mut request) {
        fail("read the request", &e);
    }
    // Standard input becomes /dev/null (it was the zygote's request socket) and the answer
    // goes where the re-executed helper writes it: standard output. Both descriptors opened
    // here are above 2 (0, 1 and 2 are open), so closing them afterwards is safe.
    let devnull = File::open("/dev/null").unwrap_or_else(|e| fail("open /dev/null", &e));
    // SAFETY: dup2 onto descriptors 0 and 1, which this process owns; no memory is touched.
    let redirected = unsafe {
        libc::dup2(devnull.as_raw_fd(), 0) == 0 && libc::dup2(stream.as_raw_fd(), 1) == 1
    };
    if !redirected {
        fail(
            "redirect its stdin and stdout",
            &std::io::Error::last_os_error(),
        );
    }
    drop(devnull);
    drop(stream);
    crate::helper::run::helper_main::<E>(&request, engine)
}

/// Receives one message carrying one descriptor; `None` at end of stream.
pub fn receive_fd(socket: &impl AsFd) -> std::io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = loop {
        match recvmsg::<()>(
            socket.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut received = None;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control {
            for fd in fds {
                // SAFETY: the kernel just created these descriptors for this process.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(fd);
            }
        }
    }
    if message.bytes == 0 && received.is_none() {
        return Ok(None);
    }
    received.map(Some).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a message without a descriptor",
        )
    })
}
