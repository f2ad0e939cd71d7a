//! Reaps the shim's children and hands each watched process its exit status exactly once.
//!
//! The shim is a child subreaper: container processes become its children once the
//! short-lived create helper has exited. A watched process is registered with the pidfd that
//! was opened for it before its workload started, and it is reaped *through that pidfd*
//! (`waitid(P_PIDFD)`), so a recycled pid can never be mistaken for it. Every other child
//! (helpers, orphans from inside containers) is reaped too, so no zombie is left. This replaces
//! the `containerd-shim` crate's reaper, whose `waitpid(-1)` would race with the pidfd.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use signal_hook::consts::SIGCHLD;
use signal_hook::iterator::Signals;

use crate::pidfd::pidfd_open;

/// Called once with the exit status (`128 + signal` for a signalled process).
pub type OnExit = Box<dyn FnOnce(i32) + Send>;

/// The exit status containerd expects when the real one is lost (runc's shim uses it too).
pub const UNKNOWN_EXIT_STATUS: i32 = 255;

struct Watch {
    pidfd: OwnedFd,
    on_exit: OnExit,
}

#[derive(Default)]
struct Children {
    watched: HashMap<i32, Watch>,
    /// How many [`Adoption`]s are alive.
    adoptions: usize,
    /// While any adoption is alive: exit statuses of children reaped unwatched.
    unclaimed: HashMap<i32, i32>,
}

#[derive(Default)]
pub struct Reaper {
    children: Mutex<Children>,
}

/// A process that a helper starts and that runs at once (an exec process) may exit, and be
/// reaped as an unknown child, before the shim learns its pid. While an `Adoption` is alive,
/// such exits are kept so that [`Adoption::watch`] still reports them.
pub struct Adoption<'a> {
    reaper: &'a Reaper,
}

/// A process handed to [`Adoption::watch`].
pub enum Adopted {
    /// Alive (or not yet reaped): its pidfd, for signals. `on_exit` runs on the reaper thread.
    Watched(OwnedFd),
    /// It had already exited with this status; `on_exit` is handed back, not run.
    Exited(i32, OnExit),
}

impl Reaper {
    /// Starts the reaping thread. Call before the shim spawns any child.
    pub fn start() -> std::io::Result<Arc<Self>> {
        let reaper = Arc::new(Self::default());
        let mut signals = Signals::new([SIGCHLD])?;
        let worker = Arc::clone(&reaper);
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || {
                for _ in signals.forever() {
                    worker.reap();
                }
            })?;
        Ok(reaper)
    }

    /// Watches `pid` through `pidfd`. If it already exited (and was reaped as an unknown
    /// child before this call), `on_exit` gets [`UNKNOWN_EXIT_STATUS`].
    pub fn watch(&self, pid: i32, pidfd: OwnedFd, on_exit: OnExit) {
        let lost = {
            let mut children = self.children.lock().unwrap();
            match waitid(
                Id::PIDFd(pidfd.as_fd()),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            ) {
                Err(Errno::ECHILD) => Some(on_exit),
                _ => {
                    children.watched.insert(pid, Watch { pidfd, on_exit });
                    None
                }
            }
        };
        match lost {
            Some(on_exit) => {
                warn!("process {pid} was reaped before it was watched: its exit status is lost");
                on_exit(UNKNOWN_EXIT_STATUS);
            }
            // It may have exited between its SIGCHLD and the registration.
            None => self.reap(),
        }
    }

    /// Keeps the exits of unwatched children until the returned guard is dropped.
    pub fn expect_adoption(&self) -> Adoption<'_> {
        self.children.lock().unwrap().adoptions += 1;
        Adoption { reaper: self }
    }

    /// Reaps every child that has exited; runs the callbacks outside the lock.
    fn reap(&self) {
        let mut done = Vec::new();
        {
            let mut children = self.children.lock().unwrap();
            loop {
                let peek = waitid(
                    Id::All,
                    WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
                );
                let pid = match peek {
                    Ok(status) => match status.pid() {
                        Some(pid) => pid,
                        None => break,
                    },
                    Err(Errno::EINTR) => continue,
                    Err(_) => break,
                };
                match children.watched.remove(&pid.as_raw()) {
                    Some(watch) => {
                        let status = waitid(
                            Id::PIDFd(watch.pidfd.as_fd()),
                            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG,
                        );
                        done.push((watch.on_exit, exit_status(status)));
                    }
                    None => {
                        let status = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                        debug!("reaped child {pid}: {status:?}");
                        if children.adoptions > 0 {
                            children.unclaimed.insert(pid.as_raw(), exit_status(status));
                        }
                    }
                }
            }
        }
        for (on_exit, status) in done {
            on_exit(status);
        }
    }
}

impl Adoption<'_> {
    /// Watches `pid`, a child of the shim by now, or reports the exit it already had.
    /// Never runs `on_exit` on the caller's thread, so the caller may hold its own locks.
    /// A process that cannot be watched (no pidfd) counts as exited with
    /// [`UNKNOWN_EXIT_STATUS`], so its waiters and its exit event are not lost.
    pub fn watch(&self, pid: i32, on_exit: OnExit) -> Adopted {
        let mut children = self.reaper.children.lock().unwrap();
        if let Some(status) = children.unclaimed.remove(&pid) {
            return Adopted::Exited(status, on_exit);
        }
        // Not reaped (the lock keeps it so): alive or a zombie, either way still `pid`. If
        // it is a zombie already, its SIGCHLD makes the reaper thread pass again once the
        // lock is free.
        let pidfds = pidfd_open(pid).and_then(|pidfd| Ok((pidfd.try_clone()?, pidfd)));
        match pidfds {
            Ok((signals, pidfd)) => {
                children.watched.insert(pid, Watch { pidfd, on_exit });
                Adopted::Watched(signals)
            }
            Err(e) => {
                warn!("process {pid} cannot be watched ({e}): its exit status is lost");
                Adopted::Exited(UNKNOWN_EXIT_STATUS, on_exit)
            }
        }
    }
}

impl Drop for Adoption<'_> {
    fn drop(&mut self) {
        let mut children = self.reaper.children.lock().unwrap();
        children.adoptions -= 1;
        if children.adoptions == 0 {
            children.unclaimed.clear();
        }
    }
}

fn exit_status(status: nix::Result<WaitStatus>) -> i32 {
    match status {
        Ok(WaitStatus::Exited(_, code)) => code,
        Ok(WaitStatus::Signaled(_, signal, _)) => 128 + signal as i32,
        other => {
            warn!("unexpected wait status {other:?}");
            UNKNOWN_EXIT_STATUS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn watched_children_get_their_status_once_and_others_are_reaped() {
        crate::test_support::alone(
            module_path!(),
            "watched_children_get_their_status_once_and_others_are_reaped",
            reaper_checks,
        );
    }

    #[allow(
        clippy::zombie_processes,
        reason = "the reaper under test is what waits for them"
    )]
    fn reaper_checks() {
        let reaper = Reaper::start().unwrap();
        let (tx, rx) = mpsc::channel();

        for (script, expected) in [("exit 42", 42), ("kill -9 $$", 137), ("exit 0", 0)] {
            let child = std::process::Command::new("/bin/sh")
                .args(["-c", &format!("sleep 0.2; {script}")])
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            let tx = tx.clone();
            reaper.watch(
                pid,
                pidfd_open(pid).unwrap(),
                Box::new(move |status| tx.send((pid, status)).unwrap()),
            );
            let (got_pid, status) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!((got_pid, status), (pid, expected), "{script}");
        }
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "reported twice"
        );

        // An unwatched child is reaped (no zombie stays behind).
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "zombie {pid} left"
        );

        // A child that exited and was reaped before it was watched is reported as lost.
        let child = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 0.1"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let pidfd = pidfd_open(pid).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let lost = tx.clone();
        reaper.watch(
            pid,
            pidfd,
            Box::new(move |status| lost.send((pid, status)).unwrap()),
        );
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            (pid, UNKNOWN_EXIT_STATUS)
        );

        // During an adoption, a child reaped before it was watched keeps its real status,
        // and one still running is watched.
        let adoption = reaper.expect_adoption();
        let quick = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap()
            .id() as i32;
        let slow = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 0.3; exit 9"])
            .spawn()
            .unwrap()
            .id() as i32;
        std::thread::sleep(Duration::from_millis(150));
        for pid in [quick, slow] {
            let tx = tx.clone();
            let adopted =
                adoption.watch(pid, Box::new(move |status| tx.send((pid, status)).unwrap()));
            match adopted {
                Adopted::Exited(status, _) => assert_eq!((pid, status), (quick, 7)),
                Adopted::Watched(_) => assert_eq!(pid, slow),
            }
        }
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), (slow, 9));
        drop(adoption);
        assert!(reaper.children.lock().unwrap().unclaimed.is_empty());
    }
}
