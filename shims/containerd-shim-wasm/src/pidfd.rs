//! Process file descriptors: a process named by a pidfd cannot be confused with a later one
//! that got its pid. The shim signals and reaps through them; the helper hands the shim its
//! own pidfd, so the shim knows when the helper is gone.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;

/// A pidfd for `pid`: signals sent through it can never reach a recycled pid.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Blocks until the process behind `pidfd` has exited (it may not be our child). Once it
/// has, its own children have been re-parented.
pub fn wait_gone(pidfd: impl AsFd) -> std::io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends `signal` through a pidfd.
pub fn pidfd_signal(pidfd: impl AsFd, signal: i32) -> std::io::Result<()> {
    let signal = rustix::process::Signal::from_named_raw(signal).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unknown signal {signal}"),
        )
    })?;
    Ok(rustix::process::pidfd_send_signal(pidfd, signal)?)
}
