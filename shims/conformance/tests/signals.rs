//! `ctr task kill` on a sleeping and on a spinning program.
//!
//! Under runc, a native program is pid 1 of its pid namespace, and the kernel drops
//! signals to such a process that it has no handler for, SIGKILL aside: the native demo
//! (no SIGTERM handler) keeps running after SIGTERM and only SIGKILL stops it (137). A
//! native container on a Wasm shim must behave the same. A Wasm module has no signal
//! handlers; the project decided that SIGTERM stops it within a second with status 143,
//! and SIGKILL with 137, whether it sleeps in a host call or spins in Wasm code.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use shim_conformance::container::Status;
use shim_conformance::expect::{
    EXIT_SIGKILL, EXIT_SIGTERM, SIGTERM_IGNORED_FOR, WASM_SIGTERM_DEADLINE,
};
use shim_conformance::target::{Target, all_targets, check_targets};

/// Long enough that the program never finishes by itself during a test.
const SLEEP: &[&str] = &["sleep", "600"];
const SLEEP_READY: &str = "sleeping 600";
const LOOP: &[&str] = &["loop"];
const LOOP_READY: &str = "looping";

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigterm_stops_a_sleeping_wasm_module_but_not_a_native_pid_1() {
    check_targets(&all_targets(), |target, test| {
        sigterm(target, test, SLEEP, SLEEP_READY)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigterm_stops_a_spinning_wasm_module_but_not_a_native_pid_1() {
    check_targets(&all_targets(), |target, test| {
        sigterm(target, test, LOOP, LOOP_READY)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigkill_stops_a_sleeping_program() {
    check_targets(&all_targets(), |target, test| {
        sigkill(target, test, SLEEP, SLEEP_READY)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigkill_stops_a_spinning_program() {
    check_targets(&all_targets(), |target, test| {
        sigkill(target, test, LOOP, LOOP_READY)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn sigkill_to_all_processes_stops_the_container() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let mut running = container.spawn(&target.args(SLEEP))?;
        running.wait_for_stdout(SLEEP_READY, Duration::from_secs(20))?;
        container.kill_all("SIGKILL")?;
        container.wait_until_not_running(Duration::from_secs(5))?;
        running
            .wait(Duration::from_secs(10))?
            .expect(EXIT_SIGKILL, &format!("{SLEEP_READY}\n"))
    });
}

fn sigterm(target: &Target, test: &str, command: &[&str], ready: &str) -> Result<()> {
    let container = target.container(test);
    let mut running = container.spawn(&target.args(command))?;
    running.wait_for_stdout(ready, Duration::from_secs(20))?;
    container.kill("SIGTERM")?;
    let sent = Instant::now();
    if target.is_wasm() {
        let stopped_after = container.wait_until_not_running(Duration::from_secs(10))?;
        let out = running.wait(Duration::from_secs(10))?;
        out.expect(EXIT_SIGTERM, &format!("{ready}\n"))?;
        if stopped_after > WASM_SIGTERM_DEADLINE {
            bail!(
                "SIGTERM stopped `{}` only after {stopped_after:?} (deadline {WASM_SIGTERM_DEADLINE:?})",
                out.command
            );
        }
        return Ok(());
    }
    std::thread::sleep(SIGTERM_IGNORED_FOR.saturating_sub(sent.elapsed()));
    match container.task()? {
        Some(task) if task.status == Status::Running => {}
        other => bail!(
            "`{}`: a native pid 1 without a SIGTERM handler must ignore SIGTERM (as under runc); \
             {SIGTERM_IGNORED_FOR:?} after SIGTERM the task is {other:?}, output: {}",
            running.command(),
            running.stdout_so_far()
        ),
    }
    container.kill("SIGKILL")?;
    running
        .wait(Duration::from_secs(10))?
        .expect(EXIT_SIGKILL, &format!("{ready}\n"))
}

fn sigkill(target: &Target, test: &str, command: &[&str], ready: &str) -> Result<()> {
    let container = target.container(test);
    let mut running = container.spawn(&target.args(command))?;
    running.wait_for_stdout(ready, Duration::from_secs(20))?;
    container.kill("SIGKILL")?;
    container.wait_until_not_running(Duration::from_secs(5))?;
    running
        .wait(Duration::from_secs(10))?
        .expect(EXIT_SIGKILL, &format!("{ready}\n"))
}
