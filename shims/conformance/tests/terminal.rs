//! A terminal for the task (`ctr run -t`, `docker run -t`, `kubectl run -it`): the program's
//! stdio is a pseudo-terminal whose output reaches the client, whose input comes from it and
//! whose size follows the client's (`ResizePty`), the same on runc and on our shims.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use shim_conformance::container::Status;
use shim_conformance::leftovers::process_in_container;
use shim_conformance::target::{all_targets, check_targets};

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn output_and_exit_status_come_through_the_terminal() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let out = container
            .run_in_terminal("true", &target.args(&["stderr", "to the terminal"]))?
            .output()?;
        ensure!(
            out.code == Some(0) && out.stdout.contains("to the terminal"),
            "stderr written to a terminal did not reach the client: {}",
            out.describe()
        );
        let out = target
            .container(&format!("{test}-exit"))
            .run_in_terminal("true", &target.args(&["exit", "5"]))?
            .output()?;
        ensure!(
            out.code == Some(5),
            "the exit status through a terminal: {}",
            out.describe()
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn typed_input_reaches_the_program() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let mut running = container
            .run_in_terminal("true", &target.args(&["stdin"]))?
            .stdin_open()
            .spawn()?;
        container.wait_for_status(Status::Running, TIMEOUT)?;
        // The line, then end-of-file as a terminal spells it (^D at the start of a line).
        running.send_stdin(b"typed line\n".to_vec());
        std::thread::sleep(Duration::from_millis(300));
        running.send_stdin(b"\x04".to_vec());
        let out = running.wait(TIMEOUT)?;
        // Once echoed by the terminal, once copied by the program.
        ensure!(
            out.code == Some(0) && out.stdout.matches("typed line").count() == 2,
            "typed input: {}",
            out.describe()
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_terminal_has_the_clients_size() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let running = container
            .run_in_terminal("stty cols 123 rows 45", &target.args(&["sleep", "5"]))?
            .spawn()?;
        container.wait_for_status(Status::Running, TIMEOUT)?;
        let pid = process_in_container(container.id())?;
        // The program's stdin is the terminal's slave; ask it for its size from outside. ctr
        // sends the size (ResizePty) just after Start, so allow it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let size = loop {
            let size = std::process::Command::new("stty")
                .args(["-F", &format!("/proc/{pid}/fd/0"), "size"])
                .output()
                .context("run stty")?;
            let size = String::from_utf8_lossy(&size.stdout).trim().to_owned();
            if size == "45 123" || Instant::now() > deadline {
                break size;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        ensure!(
            size == "45 123",
            "the container's terminal is {size:?} (rows cols), the client's is \"45 123\""
        );
        running.wait(TIMEOUT)?.success()?;
        Ok(())
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn exec_with_a_terminal() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        container.run_detached(&target.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, TIMEOUT)?;
        let out = container
            .exec_in_terminal("tty", &target.args(&["echo", "exec at a terminal"]))
            .output()?;
        ensure!(
            out.code == Some(0) && out.stdout.contains("exec at a terminal"),
            "exec -t: {}",
            out.describe()
        );
        Ok(())
    });
}
