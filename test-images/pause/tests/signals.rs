//! pause runs until SIGTERM or SIGINT and then exits 0; SIGCHLD does not end it.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The pause process, killed if the test fails before it exits.
struct Pause(Child);

impl Drop for Pause {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Pause {
    fn start() -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_pause"))
            .spawn()
            .expect("pause starts");
        let pause = Self(child);
        pause.wait_until_waiting_for_signals();
        pause
    }

    /// A signal that arrives before pause blocked it takes the default action: wait until
    /// pause sits in sigwait (`sigtimedwait` in the kernel, which has the signals blocked).
    fn wait_until_waiting_for_signals(&self) {
        let wchan = format!("/proc/{}/wchan", self.0.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let waiting_in = std::fs::read_to_string(&wchan).unwrap_or_default();
            if waiting_in.contains("sigtimedwait") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pause is not in sigwait after 10s (wchan {waiting_in:?})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.0.id() as i32), signal).expect("signal sent");
    }

    /// The exit code, or None if it is still running after `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("wait works") {
                return Some(status.code().expect("pause exits, it is not killed"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

#[test]
fn exits_0_on_sigterm_and_sigint_and_survives_sigchld() {
    for stop in [Signal::SIGTERM, Signal::SIGINT] {
        let mut pause = Pause::start();
        pause.signal(Signal::SIGCHLD);
        assert_eq!(
            pause.wait(Duration::from_millis(300)),
            None,
            "SIGCHLD ended pause"
        );
        pause.signal(stop);
        assert_eq!(pause.wait(Duration::from_secs(5)), Some(0), "after {stop}");
    }
}
