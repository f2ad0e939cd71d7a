//! pause runs until SIGTERM or SIGINT and then exits 0; SIGCHLD does not end it.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn start() -> Child {
    Command::new(env!("CARGO_BIN_EXE_pause"))
        .spawn()
        .expect("pause starts")
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).expect("signal sent");
}

fn wait_until_sigterm_is_blocked(child: &Child) {
    let sigterm_bit = 1u64 << (Signal::SIGTERM as u32 - 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let blocked = status
            .lines()
            .find_map(|line| line.strip_prefix("SigBlk:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        if blocked & sigterm_bit != 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pause did not block SIGTERM within 10s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The exit code, or None if it is still running after `timeout`.
fn wait(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait works") {
            return Some(status.code().expect("pause exits, it is not killed"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn exits_0_on_sigterm_and_sigint_and_survives_sigchld() {
    for stop in [Signal::SIGTERM, Signal::SIGINT] {
        let mut pause = start();
        // A signal before pause blocked it would take the default action.
        wait_until_sigterm_is_blocked(&pause);
        signal(&pause, Signal::SIGCHLD);
        assert_eq!(
            wait(&mut pause, Duration::from_millis(300)),
            None,
            "SIGCHLD ended pause"
        );
        signal(&pause, stop);
        assert_eq!(
            wait(&mut pause, Duration::from_secs(5)),
            Some(0),
            "after {stop}"
        );
    }
}
