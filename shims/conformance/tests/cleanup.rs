//! After delete nothing of a container is left: no process, mount, cgroup, bundle, shim
//! socket or shim state.

use std::time::Duration;

use anyhow::{Result, ensure};
use shim_conformance::container::Status;
use shim_conformance::ctr::Ctr;
use shim_conformance::environment::containerd;
use shim_conformance::leftovers::{Footprint, expect_no_leftovers, leftovers_of, shim_socket};
use shim_conformance::target::{Target, all_targets, check_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn nothing_left_after_a_killed_task_is_deleted() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container.run_detached(&target.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, Duration::from_secs(10))?;
        let footprint = observe(target, container.id())?;

        container.kill("SIGKILL")?;
        container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
        container.delete_task()?;
        container.delete()?;
        footprint.expect_gone()
    });
}

/// The leftover checks see every kind of footprint while a container runs: otherwise the
/// tests above could pass by looking in the wrong place.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn leftover_checks_see_a_running_container() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container.run_detached(&target.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, Duration::from_secs(10))?;
        let seen = leftovers_of(container.id());
        let missing: Vec<&str> = [
            "process in the container's cgroup",
            "shim process",
            "mount ",
            "cgroup ",
            "bundle ",
            "shim socket ",
            "shim state ",
        ]
        .into_iter()
        .filter(|kind| !seen.iter().any(|item| item.starts_with(kind)))
        .collect();
        ensure!(
            missing.is_empty(),
            "running container {} shows no {missing:?}; seen: {seen:#?}",
            container.id()
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn nothing_left_after_a_task_exits_and_is_deleted() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container.run_detached(&target.args(&["exit", "3"]))?;
        container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
        container.delete_task()?;
        container.delete()?;
        expect_no_leftovers(container.id())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn nothing_left_after_run_rm() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container
            .run(&target.args(&["echo", "bye"]))?
            .expect(0, "bye\n")?;
        expect_no_leftovers(container.id())
    });
}

/// Two deletes at once, as when an operator force-deletes a task that `ctr run` (or a
/// kubelet) is waiting on: whichever wins, the task must be gone from containerd and
/// nothing may be left (the loser must get NotFound, not an error that makes containerd
/// keep a task whose shim no longer knows it). The loser's ctr exits 1 reporting its failed
/// delete, under runc too, so exit codes are not compared.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn force_delete_while_ctr_run_waits() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let mut running = container.spawn(&target.args(&["sleep", "600"]))?;
        running.wait_for_stdout("sleeping 600", Duration::from_secs(20))?;
        let footprint = observe(target, container.id())?;
        // Either this delete or the one of `ctr run --rm` gets there first: not checked.
        let _ = Ctr::new(["task", "delete", "--force", container.id()]).output()?;
        running.wait(Duration::from_secs(20))?;
        let task = container.task()?;
        ensure!(
            task.is_none(),
            "containerd still lists task {} after both deletes: {task:?}",
            container.id()
        );
        footprint.expect_gone()
    });
}

/// Records the running container's processes, after checking that the leftover checks
/// see it at all (its shim socket exists, it has processes), so that they cannot pass
/// by looking in the wrong place.
fn observe(target: &Target, id: &str) -> Result<Footprint> {
    let socket = containerd().path(shim_socket(id));
    ensure!(
        socket.exists(),
        "[{target}] the shim socket of running container {id} is not at {}: the leftover check would miss it",
        socket.display()
    );
    let footprint = Footprint::observe(id);
    ensure!(
        footprint.processes().len() >= 2,
        "[{target}] found {:?} for running container {id}, expected its shim and its process",
        footprint.processes()
    );
    Ok(footprint)
}
