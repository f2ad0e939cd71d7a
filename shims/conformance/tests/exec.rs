//! Exec processes (`ctr task exec`, what `kubectl exec` and exec probes use): a second program
//! in a running container, with its own stdio, exit status, signals and events, the same on
//! runc and on our shims (a module in a Wasm container, a program in a native one).

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status};
use shim_conformance::events::{TASK_TOPICS, task_events_of, topics_are};
use shim_conformance::expect::{EXIT_SIGKILL, MISSING_FILE};
use shim_conformance::target::{Target, all_targets, check_targets};

const STARTUP: Duration = Duration::from_secs(20);

/// Starts `target`'s program sleeping in a detached task, and waits until it runs.
fn sleeping(target: &Target, test: &str) -> Result<Container> {
    let container = target.container(test).env("GREETING=hi from the spec");
    container.run_detached(&target.args(&["sleep", "600"]))?;
    container.wait_for_status(Status::Running, STARTUP)?;
    Ok(container)
}

/// Exec processes come and go; the task itself keeps running.
fn still_running(container: &Container, when: &str) -> Result<()> {
    let task = container.task()?;
    ensure!(
        task.map(|t| t.status) == Some(Status::Running),
        "the task is {task:?} {when}, expected running"
    );
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn exec_runs_a_program_in_the_running_container() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        let program = target.workload.program();

        container
            .exec("echo", &[program, "echo", "from", "exec"])?
            .expect(0, "from exec\n")?;
        container
            .exec("exit", &[program, "exit", "7"])?
            .expect(7, "")?;
        // ctr gives the exec the container's environment.
        let env = container.exec("env", &[program, "env"])?;
        env.success()?;
        ensure!(
            env.stdout.lines().any(|l| l == "GREETING=hi from the spec"),
            "the exec process does not see the container's env: {}",
            env.describe()
        );
        // Several at once.
        let parallel: Vec<_> = (0..4)
            .map(|i| {
                let word = format!("word{i}");
                container.spawn_exec(&format!("p{i}"), &[program, "echo", &word])
            })
            .collect::<Result<_>>()?;
        for (i, running) in parallel.into_iter().enumerate() {
            running.wait()?.expect(0, &format!("word{i}\n"))?;
        }

        still_running(&container, "after its exec processes")
    });
}

/// The container's files, at the exec's own working directory.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn exec_runs_in_its_own_working_directory() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        container
            .exec_in(
                "cwd",
                "/data",
                &[target.workload.program(), "cat", "hello.txt"],
            )?
            .expect(0, "hello from a file\n")?;
        still_running(&container, "after its exec process")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn exec_processes_are_listed_and_signalled_on_their_own() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        let program = target.workload.program();
        let exec = container.spawn_exec("sleeper", &[program, "sleep", "600"])?;
        exec.wait_for_stdout("sleeping 600", STARTUP)?;
        let pids = container.ps()?;
        ensure!(
            pids.len() == 2,
            "`ctr task ps` lists {pids:?}, expected the init and the exec process"
        );

        container.kill_exec("sleeper", "SIGKILL")?;
        exec.wait()?.expect(EXIT_SIGKILL, "sleeping 600\n")?;
        let pids = container.ps()?;
        ensure!(
            pids.len() == 1,
            "`ctr task ps` lists {pids:?} after the exec process was killed"
        );
        still_running(&container, "after its exec process was killed")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_missing_exec_program_is_named_and_the_task_keeps_running() {
    check_targets(&all_targets(), |target, test| {
        let container = sleeping(target, test)?;
        let error = match container.exec("missing", &["/no-such-program"]) {
            Ok(out) => bail!("exec of a missing program succeeded: {}", out.describe()),
            Err(e) => format!("{e:#}").to_lowercase(),
        };
        ensure!(
            error.contains("/no-such-program") && MISSING_FILE.iter().any(|m| error.contains(m)),
            "exec of a missing program: expected an error naming it, got {error}"
        );
        still_running(&container, "after a failed exec")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn exec_events_arrive_between_start_and_exit() {
    check_targets(&all_targets(), |target, test| {
        let api = Api::connect()?;
        let mut events = api.subscribe(TASK_TOPICS)?;
        let container = sleeping(target, test)?;
        container
            .exec("evented", &[target.workload.program(), "exit", "3"])?
            .expect(3, "")?;
        container.kill("SIGKILL")?;
        container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
        container.delete_task()?;

        let seen = task_events_of(&mut events, container.id(), Duration::from_secs(10))?;
        let topics: Vec<&str> = seen.iter().map(|e| e.topic.as_str()).collect();
        let expected = [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/exit",
            "/tasks/delete",
        ];
        if !topics_are(target, &topics, &expected) {
            bail!("expected the events {expected:?}, got {topics:?}");
        }
        let exec_pid = seen[3].pid;
        let (exec_exit, init_exit) = (&seen[4], &seen[5]);
        ensure!(
            exec_pid.is_some_and(|pid| pid != 0) && exec_exit.pid == exec_pid,
            "the exec's exit event is not about the pid it started with: {seen:?}"
        );
        ensure!(
            exec_exit.exit_status == Some(3),
            "the exec's exit event has status {:?}, expected 3",
            exec_exit.exit_status
        );
        ensure!(
            init_exit.pid == seen[0].pid && init_exit.exit_status == Some(EXIT_SIGKILL as u32),
            "the init process's exit event is wrong: {seen:?}"
        );
        Ok(())
    });
}
