//! `pause`: the first process of a pod sandbox (the CRI plugin's `sandbox_image`).
//!
//! It holds the pod's namespaces while the pod's containers come and go, reaps the orphans
//! it inherits as the pod's pid 1, and exits 0 on SIGTERM or SIGINT (the sandbox stopping).
//! Built static (like native-demo) so that its image needs no libc.

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

fn main() {
    // The signals are blocked and taken synchronously with sigwait: no handler runs at an
    // arbitrary point, and none can be lost between two waits (pending signals stay queued).
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        signals.add(signal);
    }
    if let Err(e) = signals.thread_block() {
        eprintln!("pause: cannot block SIGTERM, SIGINT and SIGCHLD: {e}");
        std::process::exit(1);
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap_exited_children(),
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("pause: sigwait failed: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Collects every child that has exited; one SIGCHLD may stand for several exits.
fn reap_exited_children() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("pause: waitpid failed: {e}");
                return;
            }
        }
    }
}
