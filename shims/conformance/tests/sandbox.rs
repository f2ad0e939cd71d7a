//! One shim per pod: a container annotated `io.kubernetes.cri.sandbox-id=<sandbox>` runs
//! under the shim of that sandbox container (runc's shim does the same: the reference).

use std::time::Duration;

use anyhow::{Result, ensure};
use shim_conformance::container::{Container, Status};
use shim_conformance::leftovers::{in_container_cgroup, shims_of};
use shim_conformance::procfs;
use shim_conformance::target::{all_targets, check_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn containers_of_a_sandbox_share_its_shim() {
    check_targets(&all_targets(), |target, test| {
        let sandbox = target.sleeping_sandbox(test)?;
        let sandbox_id = sandbox.id().to_owned();
        let member = target.sleeping_member(test, &sandbox_id)?;

        let shims = shims_of(&sandbox_id);
        ensure!(
            shims.len() == 1,
            "sandbox {sandbox_id} has shims {shims:?}, expected one"
        );
        let own_shims = shims_of(member.id());
        ensure!(
            own_shims.is_empty(),
            "container {} runs its own shim {own_shims:?} instead of joining sandbox {sandbox_id}",
            member.id()
        );
        let member_processes: Vec<u32> = procfs::pids()
            .into_iter()
            .filter(|pid| in_container_cgroup(*pid, member.id()))
            .collect();
        ensure!(
            !member_processes.is_empty(),
            "no process in the cgroup of container {}",
            member.id()
        );
        for pid in member_processes {
            ensure!(
                procfs::ancestors(pid).contains(&shims[0]),
                "process {pid} of container {} does not descend from the sandbox's shim {}",
                member.id(),
                shims[0]
            );
        }
        stop(&member)?;
        stop(&sandbox)
    });
}

fn stop(container: &Container) -> Result<()> {
    container.kill("SIGKILL")?;
    container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
    container.delete_task()?;
    container.delete()
}
