//! What Docker (moby 23+) asks of a runtime such as `io.containerd.wasmtime.v1`, reproduced
//! call for call by `shim_conformance::moby`: the container without runtime options, a spec of
//! moby's shape, `init-*` FIFOs, `-i` and `-t`; then `docker stop`, `top`, `stats`, `pause`,
//! `update`, `exec` and `rm -f`. runc runs the same requests as the reference.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::api::Api;
use shim_conformance::container::Status;
use shim_conformance::expect::{EXIT_SIGKILL, EXIT_SIGTERM};
use shim_conformance::leftovers::{Footprint, expect_no_leftovers};
use shim_conformance::moby::{CgroupDriver, DockerRun, RunFlags, hostname};
use shim_conformance::target::{Target, all_targets, check_targets, wasm_targets};

const TIMEOUT: Duration = Duration::from_secs(20);

/// `docker stop`'s default grace period, shortened: SIGTERM, this long, then SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

const PLAIN: RunFlags = RunFlags {
    interactive: false,
    tty: false,
    cgroup: CgroupDriver::Cgroupfs,
};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn docker_run_sees_its_files_and_streams() {
    check_targets(&all_targets(), |target, test| {
        // /etc/hostname is Docker's bind mount from the container's directory.
        let mut run = DockerRun::start(
            target.container(test),
            &target.args(&["cat", "/etc/hostname"]),
            PLAIN,
        )?;
        let id = run.container.id().to_owned();
        let (status, stdout, _) = run.wait()?;
        ensure!(
            status == 0 && stdout == format!("{}\n", hostname(&id)),
            "cat /etc/hostname: status {status}, stdout {stdout:?}"
        );
        let mut run = DockerRun::start(
            target.container(&format!("{test}-stderr")),
            &target.args(&["stderr", "to init-stderr"]),
            PLAIN,
        )?;
        let (status, stdout, stderr) = run.wait()?;
        ensure!(
            status == 0 && stdout.is_empty() && stderr == "to init-stderr\n",
            "stderr: status {status}, stdout {stdout:?}, stderr {stderr:?}"
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn docker_run_interactive_and_tty() {
    check_targets(&all_targets(), |target, test| {
        let interactive = RunFlags {
            interactive: true,
            ..PLAIN
        };
        let mut run = DockerRun::start(
            target.container(test),
            &target.args(&["stdin"]),
            interactive,
        )?;
        run.send_stdin_and_close(b"piped through init-stdin\n")?;
        let (status, stdout, _) = run.wait()?;
        ensure!(
            status == 0 && stdout == "piped through init-stdin\n",
            "-i: status {status}, stdout {stdout:?}"
        );

        // -t: one terminal for both streams, no init-stderr.
        let tty = RunFlags { tty: true, ..PLAIN };
        let mut run = DockerRun::start(
            target.container(&format!("{test}-tty")),
            &target.args(&["stderr", "on the terminal"]),
            tty,
        )?;
        let (status, stdout, stderr) = run.wait()?;
        ensure!(
            status == 0 && stdout.contains("on the terminal") && stderr.is_empty(),
            "-t: status {status}, stdout {stdout:?}, stderr {stderr:?}"
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn docker_verbs_on_a_running_container() {
    check_targets(&all_targets(), |target, test| {
        let mut run = DockerRun::start(
            target.container(test),
            &target.args(&["sleep", "600"]),
            PLAIN,
        )?;
        let container = &run.container;
        let id = container.id().to_owned();
        container.wait_for_status(Status::Running, TIMEOUT)?;

        // docker top: Pids.
        let pids = container.ps()?;
        ensure!(!pids.is_empty(), "docker top: no processes");
        // docker stats: Stats.
        let memory = container.memory_usage()?;
        ensure!(memory > 0, "docker stats: memory usage {memory}");

        // docker pause / unpause.
        shim_conformance::ctr::Ctr::new(["task", "pause", &id])
            .output()?
            .success()?;
        container.wait_for_status(Status::Paused, TIMEOUT)?;
        shim_conformance::ctr::Ctr::new(["task", "resume", &id])
            .output()?
            .success()?;
        container.wait_for_status(Status::Running, TIMEOUT)?;

        // docker update --memory 96m --cpus 0.5: Update, seen in the cgroup's limits.
        let limit: u64 = 96 * 1024 * 1024;
        Api::connect()?.update_task(
            &id,
            &serde_json::json!({
                "memory": {"limit": limit},
                "cpu": {"quota": 50000, "period": 100000},
            }),
        )?;
        let metrics = container.metrics()?;
        let seen = metrics["memory"]["usage"]["limit"]
            .as_u64()
            .or_else(|| metrics["memory"]["usage_limit"].as_u64())
            .with_context(|| format!("no memory limit in the metrics: {metrics}"))?;
        ensure!(
            seen == limit,
            "docker update: memory limit {seen}, expected {limit}"
        );

        // docker exec.
        container
            .exec("docker-exec", &target.args(&["echo", "exec works"]))?
            .expect(0, "exec works\n")?;

        // docker stop: SIGTERM, the grace period, then SIGKILL.
        let status = docker_stop(target, &run)?;
        let expected = if target.is_wasm() {
            EXIT_SIGTERM
        } else {
            // pid 1 of its namespace, the native demo ignores SIGTERM.
            EXIT_SIGKILL
        };
        ensure!(
            status == expected as u32,
            "docker stop: exit status {status}, expected {expected}"
        );
        let (waited, _, _) = run.wait()?;
        ensure!(waited == status, "Wait says {waited}, stop saw {status}");
        Ok(())
    });
}

/// SIGTERM; if the task still runs after [`STOP_GRACE`], SIGKILL. Returns the exit status.
fn docker_stop(target: &Target, run: &DockerRun) -> Result<u32> {
    let container = &run.container;
    container.kill("SIGTERM")?;
    let stopped = container.wait_for_status(Status::Stopped, STOP_GRACE);
    if stopped.is_err() {
        if target.is_wasm() {
            bail!("a Wasm task ignored SIGTERM for {STOP_GRACE:?}");
        }
        container.kill("SIGKILL")?;
        container.wait_for_status(Status::Stopped, TIMEOUT)?;
    }
    Api::connect()?.wait_task(container.id())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn docker_rm_force_leaves_nothing() {
    check_targets(&all_targets(), |target, test| {
        let run = DockerRun::start(
            target.container(test),
            &target.args(&["sleep", "600"]),
            PLAIN,
        )?;
        let container = &run.container;
        let id = container.id().to_owned();
        container.wait_for_status(Status::Running, TIMEOUT)?;
        let footprint = Footprint::observe(&id);
        // docker rm -f: SIGKILL, then delete the task and the container.
        container.kill("SIGKILL")?;
        container.wait_for_status(Status::Stopped, TIMEOUT)?;
        let status = Api::connect()?.delete_task(&id)?;
        ensure!(
            status == EXIT_SIGKILL as u32,
            "docker rm -f: exit status {status}"
        );
        container.delete()?;
        footprint.expect_gone()?;
        expect_no_leftovers(&id)
    });
}

/// Docker with the systemd cgroup driver sends `cgroupsPath` as `system.slice:docker:<id>`
/// and, to a runtime other than runc, no option that says so: where systemd runs, the shim
/// recognises the form and places the cgroup through systemd; where it does not (this node),
/// the path is a cgroupfs path, as runc's default cgroupfs driver takes it.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn docker_systemd_cgroup_path() {
    let systemd = std::path::Path::new("/run/systemd/system").exists();
    check_targets(&wasm_targets(), |target, test| {
        let flags = RunFlags {
            cgroup: CgroupDriver::Systemd,
            ..PLAIN
        };
        let args = target.args(&["cat", "/proc/self/cgroup"]);
        let mut run = DockerRun::start(target.container(test), &args, flags)
            .with_context(|| format!("systemd running: {systemd}"))?;
        let id = run.container.id().to_owned();
        // systemd's driver makes a scope; cgroupfs takes the text as the cgroup's name.
        let cgroup = if systemd {
            format!("docker-{id}.scope")
        } else {
            CgroupDriver::Systemd.cgroups_path(&id)
        };
        let (status, stdout, _) = run.wait()?;
        ensure!(
            status == 0 && stdout.lines().any(|line| line.ends_with(&cgroup)),
            "systemd running: {systemd}; expected the cgroup {cgroup} in /proc/self/cgroup; \
             status {status}, stdout {stdout:?}"
        );
        Api::connect()?.delete_task(&id)?;
        run.container.delete()?;
        expect_no_leftovers(&id)
    });
}
