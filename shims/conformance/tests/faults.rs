//! Faults from outside: the container's process or its shim killed with SIGKILL, and what a
//! crashed shim leaves behind. runc is the reference for what containerd then reports.

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status};
use shim_conformance::containerd_log::LogTail;
use shim_conformance::ctr::Ctr;
use shim_conformance::environment::containerd;
use shim_conformance::expect::EXIT_SIGKILL;
use shim_conformance::leftovers::{
    Footprint, expect_no_leftovers, in_container_cgroup, shim_socket, shims_of, zygotes,
};
use shim_conformance::procfs::{self, ProcessId};
use shim_conformance::target::{Target, all_targets, check_targets, wasm_shim_targets};

/// A container's process killed from the host (not through containerd): containerd sees
/// the exit as 137, and the task and container delete cleanly.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_container_process_killed_from_outside() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        let footprint = Footprint::observe(container.id());
        let pid = process_of(&container)?;
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL)
            .with_context(|| format!("SIGKILL to process {pid} of {}", container.id()))?;
        let status = Api::connect()?.wait_task(container.id())?;
        ensure!(
            status == EXIT_SIGKILL as u32,
            "{} killed from outside exited with {status}, expected {EXIT_SIGKILL}",
            container.id()
        );
        container.delete_task()?;
        container.delete()?;
        footprint.expect_gone()
    });
}

/// The shim of a pod (a sandbox and a second container) killed with SIGKILL: containerd
/// notices, runs the binary's `delete` for each task, and forgets the tasks, as with runc.
/// `ctr task delete` then finds nothing to delete (runc's answer too), the containers
/// delete, and nothing of them is left: no process, mount, cgroup, state or socket (runc's
/// shim leaves its socket file: for runc only the processes are checked).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_shim_killed_while_its_containers_run() {
    check_targets(&all_targets(), |target, test| {
        let sandbox = target.sleeping_sandbox(test)?;
        let sandbox_id = sandbox.id().to_owned();
        let member = target.sleeping_member(test, &sandbox_id)?;
        let footprints = [
            Footprint::observe(sandbox.id()),
            Footprint::observe(member.id()),
        ];

        let shims = shims_of(&sandbox_id);
        ensure!(shims.len() == 1, "pod {sandbox_id} has shims {shims:?}");
        kill(Pid::from_raw(shims[0] as i32), Signal::SIGKILL)
            .with_context(|| format!("SIGKILL to the shim {} of {sandbox_id}", shims[0]))?;

        for container in [&member, &sandbox] {
            wait_until_gone_or_stopped(container, Duration::from_secs(20))?;
            let out = Ctr::new(["task", "delete", container.id()]).output()?;
            ensure!(
                out.code == Some(0) || out.stderr.contains("not found"),
                "`{}` after the shim died: {}",
                out.command,
                out.describe()
            );
            container.delete()?;
        }
        for footprint in &footprints {
            if target.runtime.runs_wasm {
                footprint.expect_gone()?;
            } else {
                // runc's shim leaves its socket behind; its processes must still be gone.
                processes_gone(footprint)?;
            }
        }
        Ok(())
    });
}

/// The shim's helper zygote (see the shim library's zygote.rs) killed while its pod runs: the
/// shim logs that it re-executes the helper instead, new containers join the pod and run, and
/// deleting the pod leaves nothing behind.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_helper_zygote_killed_the_pod_still_takes_containers() {
    check_targets(&wasm_shim_targets(), |target, test| {
        let sandbox = target.sleeping_sandbox(test)?;
        let sandbox_id = sandbox.id().to_owned();
        let shims = shims_of(&sandbox_id);
        ensure!(shims.len() == 1, "pod {sandbox_id} has shims {shims:?}");
        let zygotes: Vec<ProcessId> = procfs::process_tree(shims[0])
            .into_iter()
            .filter(|p| zygotes().contains(&p.pid))
            .collect();
        ensure!(
            zygotes.len() == 1,
            "the shim {} of {sandbox_id} has helper zygotes {zygotes:?}, expected one",
            shims[0]
        );
        let footprint = Footprint::observe(&sandbox_id);
        kill(Pid::from_raw(zygotes[0].pid as i32), Signal::SIGKILL)
            .with_context(|| format!("SIGKILL to the helper zygote {}", zygotes[0].pid))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while procfs::still_alive(zygotes[0]) {
            ensure!(
                Instant::now() < deadline,
                "the helper zygote {:?} survived SIGKILL",
                zygotes[0]
            );
            std::thread::sleep(Duration::from_millis(20));
        }

        let log = LogTail::now()?;
        let member = target.pod_member(test, &sandbox_id);
        let out = member.run(&target.args(&["exit", "7"]))?;
        ensure!(
            out.code == Some(7),
            "a container created after the zygote died: {}",
            out.describe()
        );
        let member_id = member.id();
        log.wait_for(
            &format!("a record with id=\"{member_id}\" saying the helper is re-executed"),
            |record| {
                record.field("id") == Some(member_id)
                    && record
                        .message()
                        .is_some_and(|m| m.contains("re-executing the helper"))
            },
            Duration::from_secs(10),
        )?;
        expect_no_leftovers(member_id)?;
        // The shim no longer asks the dead zygote: the next container just runs.
        let next = target.pod_member(&format!("next-{test}"), &sandbox_id);
        let out = next.run(&target.args(&["exit", "3"]))?;
        ensure!(
            out.code == Some(3),
            "the second container after the zygote died: {}",
            out.describe()
        );

        sandbox.kill("SIGKILL")?;
        sandbox.wait_until_not_running(Duration::from_secs(10))?;
        sandbox.delete_task()?.success()?;
        sandbox.delete()?;
        footprint.expect_gone()
    });
}

/// A crashed shim's socket under the next container's id: a socket file nobody listens on,
/// where the shim's socket goes. The container runs anyway, and nothing is left once it is
/// deleted.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_stale_socket_does_not_block_the_same_id() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let socket = containerd().path(shim_socket(container.id()));
        std::fs::create_dir_all(socket.parent().expect("the socket is in a directory"))?;
        drop(
            UnixListener::bind(&socket)
                .with_context(|| format!("cannot make a stale socket at {}", socket.display()))?,
        );
        container
            .run(&target.args(&["echo", "after a crash"]))?
            .expect(0, "after a crash\n")?;
        expect_no_leftovers(container.id())
    });
}

/// A crashed shim's state directory under the next container's id. Not for runc: its shim
/// refuses the id ("container with given ID already exists") until someone removes the
/// directory; ours removes it, since containerd's ids are unique and no live container of
/// the shim has that id.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_stale_state_dir_does_not_block_the_same_id() {
    check_targets(&wasm_shim_targets(), |target, test| {
        let container = target.container(test);
        let state = stale_state_dir(target, container.id());
        std::fs::create_dir_all(&state)
            .with_context(|| format!("cannot make a stale state dir {}", state.display()))?;
        std::fs::write(state.join("state.json"), "{ left by a crashed shim")?;
        container
            .run(&target.args(&["echo", "after a crash"]))?
            .expect(0, "after a crash\n")?;
        expect_no_leftovers(container.id())
    });
}

/// Where the runtime keeps a container's state: `/run/containerd/<runtime>/<namespace>/<id>`.
fn stale_state_dir(target: &Target, id: &str) -> PathBuf {
    let env = containerd();
    env.path("/run/containerd")
        .join(target.runtime.name)
        .join(&env.namespace)
        .join(id)
}

/// A detached container sleeping long enough to be hit (killed when dropped).
fn sleeping(target: &Target, test: &str) -> Result<Container> {
    let container = target.container(test);
    container.run_detached(&target.args(&["sleep", "600"]))?;
    container.wait_for_status(Status::Running, Duration::from_secs(10))?;
    Ok(container)
}

/// The host pid of the container's process (the one in its cgroup).
fn process_of(container: &Container) -> Result<u32> {
    let pids: Vec<u32> = procfs::pids()
        .into_iter()
        .filter(|pid| in_container_cgroup(*pid, container.id()) && procfs::alive(*pid).is_some())
        .collect();
    match pids[..] {
        [pid] => Ok(pid),
        _ => bail!(
            "expected one process in the cgroup of {}, found {pids:?}",
            container.id()
        ),
    }
}

fn processes_gone(footprint: &Footprint) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<_> = footprint
            .processes()
            .iter()
            .filter(|p| procfs::still_alive(**p))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("processes still alive after the shim was killed and cleaned up: {alive:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until_gone_or_stopped(container: &Container, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match container.task()? {
            None => return Ok(()),
            Some(task) if task.status != Status::Running => return Ok(()),
            Some(_) if Instant::now() > deadline => bail!(
                "{} still RUNNING {timeout:?} after its shim was killed",
                container.id()
            ),
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
