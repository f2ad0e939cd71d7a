//! The task as containerd reports it: states, metrics, processes.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use containerd_client::types::v1::Status as ApiStatus;
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status, TaskInfo};
use shim_conformance::target::{Target, all_targets, check_targets};

/// CREATED after Create, RUNNING after Start, STOPPED after the program exits, gone after
/// Delete; `ctr task ls` and the API agree at each step.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn task_goes_created_running_stopped() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container.create(&target.args(&["sleep", "2"]))?;
        let api = Api::connect()?;
        let id = container.id();

        let pid = api.create_task(id)?;
        ensure!(pid != 0, "Create of task {id} returned pid 0");
        expect_task(
            &container,
            TaskInfo {
                pid,
                status: Status::Created,
            },
        )?;
        ensure!(
            api.task_state(id)?.status == ApiStatus::Created,
            "the API does not report task {id} as created: {:?}",
            api.task_state(id)?
        );

        let started = api.start_task(id)?;
        ensure!(
            started == pid,
            "Start of task {id} returned pid {started}, Create returned {pid}"
        );
        expect_task(
            &container,
            TaskInfo {
                pid,
                status: Status::Running,
            },
        )?;

        container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
        ensure!(
            api.task_state(id)?.status == ApiStatus::Stopped,
            "the API does not report task {id} as stopped: {:?}",
            api.task_state(id)?
        );
        let waited = api.wait_task(id)?;
        ensure!(
            waited == 0,
            "Wait on task {id} returned exit status {waited}, expected 0"
        );
        let deleted = api.delete_task(id)?;
        ensure!(
            deleted == 0,
            "Delete of task {id} returned exit status {deleted}, expected 0"
        );
        let after = container.task()?;
        ensure!(
            after.is_none(),
            "task {id} still listed after delete: {after:?}"
        );
        Ok(())
    });
}

fn expect_task(container: &Container, expected: TaskInfo) -> Result<()> {
    let seen = container.task()?;
    if seen != Some(expected) {
        bail!(
            "`ctr task ls` shows task {} as {seen:?}, expected {expected:?}",
            container.id()
        );
    }
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn metrics_report_memory_in_use() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        let usage = container.memory_usage()?;
        ensure!(
            usage > 0,
            "task {} reports 0 bytes of memory in use",
            container.id()
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn ps_lists_the_task_process() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        let task = container.wait_for_status(Status::Running, Duration::from_secs(5))?;
        let pids = container.ps()?;
        ensure!(
            pids.contains(&task.pid),
            "`ctr task ps {}` lists {pids:?}, not the task's pid {}",
            container.id(),
            task.pid
        );
        Ok(())
    });
}

/// A task paused in the middle of a sleep is PAUSED until resumed, then sleeps on and exits
/// as it would have: the freeze interrupts the engine's wait (EINTR in the WASI clock poll),
/// which must not reach the module as a failed sleep.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_paused_task_resumes_its_sleep_and_exits_normally() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let mut running = container.spawn(&target.args(&["sleep", "2"]))?;
        running.wait_for_stdout("sleeping 2", Duration::from_secs(20))?;
        container.pause()?;
        container.wait_for_status(Status::Paused, Duration::from_secs(5))?;
        // Frozen past the end of the sleep: it is still paused, not exited.
        std::thread::sleep(Duration::from_millis(2500));
        container.wait_for_status(Status::Paused, Duration::ZERO)?;
        container.resume()?;
        running
            .wait(Duration::from_secs(20))?
            .expect(0, "sleeping 2\nslept\n")?;
        Ok(())
    });
}

/// A detached container sleeping long enough to be inspected (killed when dropped).
fn sleeping(target: &Target, test: &str) -> Result<Container> {
    let container = target.container(test);
    container.run_detached(&target.args(&["sleep", "600"]))?;
    container.wait_for_status(Status::Running, Duration::from_secs(10))?;
    Ok(container)
}
