//! The program's exit status is the task's: proc_exit codes, and traps (which the shim logs).

use std::time::Duration;

use anyhow::{Context, bail};
use shim_conformance::containerd_log::LogTail;
use shim_conformance::engines::RUNC;
use shim_conformance::expect::EXIT_TRAP;
use shim_conformance::target::{
    Target, Workload, all_targets, check_targets, native_targets, wasm_targets,
};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn exit_codes_are_the_task_status() {
    check_targets(&all_targets(), |target, test| {
        for code in ["0", "1", "42"] {
            target
                .run(test, &["exit", code])?
                .expect(code.parse()?, "")?;
        }
        Ok(())
    });
}

/// A trap fails the task with 134 (128 + SIGABRT, as a native abort; not 137, a kill), and says
/// why on the container's stderr, where `ctr`, `docker logs`
/// and `kubectl logs` show it: the trap, and on wasmtime the Wasm backtrace with the
/// file and line of each frame from the module's DWARF (the demo traps in `trap`, in its
/// `src/main.rs`).
/// Where the demo traps, as the backtrace of a module with DWARF line tables gives it.
const TRAP_FRAME: &str = "wasi-demo-app/src/main.rs:31";

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn wasm_trap_fails_the_task() {
    check_targets(&wasm_targets(), |target, test| {
        let out = target.run(test, &["trap"])?;
        let backtrace = target.runtime.name == "wasmtime";
        if out.code != Some(EXIT_TRAP)
            || !out.stdout.is_empty()
            || !out.stderr.contains("unreachable")
            || (backtrace && !out.stderr.contains(TRAP_FRAME))
        {
            bail!(
                "`{}`: expected exit code {EXIT_TRAP}, no output and the trap on stderr{}; got {}",
                out.command,
                if backtrace { " with its backtrace" } else { "" },
                out.describe()
            );
        }
        Ok(())
    });
}

/// The shim logs why a module trapped, on a record that names the container (the `id`
/// key-value), so that an operator can tell which container it was about; containerd
/// copies shim logs into its own.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn shim_log_names_the_container() {
    check_targets(&wasm_targets(), |target, test| {
        let log = LogTail::now()?;
        let container = target.container(test);
        let out = container.run(&target.args(&["trap"]))?;
        let id = container.id();
        log.wait_for(
            &format!("record with id=\"{id}\" and a message about `unreachable`"),
            |record| {
                record.field("id") == Some(id)
                    && record.message().is_some_and(|m| m.contains("unreachable"))
            },
            // containerd copies the shim log into its own; a loaded machine can lag seconds.
            Duration::from_secs(10),
        )
        .with_context(|| format!("after `{}` ({})", out.command, out.describe()))?;
        Ok(())
    });
}

/// The native demo aborts where the Wasm one traps. Under runc that is not 134 (SIGABRT):
/// as pid 1 of its pid namespace the program ignores its own SIGABRT, and glibc's abort()
/// then falls back to a faulting instruction (139 on x86_64). A native container on a Wasm
/// shim must end exactly as under runc.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn native_abort_ends_as_under_runc() {
    let reference = Target {
        runtime: &RUNC,
        workload: Workload::Native,
    }
    .run("abort-reference", &["trap"])
    .expect("the reference run could not start");
    let Some(code) = reference.code.filter(|code| *code != 0) else {
        panic!("the reference should fail: {}", reference.describe());
    };
    check_targets(&native_targets(), |target, test| {
        target.run(test, &["trap"])?.expect(code, "")
    });
}
