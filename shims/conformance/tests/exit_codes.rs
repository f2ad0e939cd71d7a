//! The program's exit status is the task's: proc_exit codes, and traps.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shim_conformance::engines::RUNC;
use shim_conformance::environment::containerd;
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

/// A trap fails the task, and the shim logs why (containerd copies shim logs to its own).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn wasm_trap_fails_the_task_and_is_logged() {
    check_targets(&wasm_targets(), |target, test| {
        let log = containerd().log_file()?;
        let logged_before = std::fs::metadata(&log)
            .with_context(|| format!("cannot stat containerd's log {}", log.display()))?
            .len();
        let out = target.run(test, &["trap"])?;
        if out.code == Some(0) || out.code.is_none() || !out.stdout.is_empty() {
            bail!(
                "`{}`: expected a failure exit code and no output; got {}",
                out.command,
                out.describe()
            );
        }
        wait_for_log(&log, logged_before, "unreachable", Duration::from_secs(3))
            .with_context(|| format!("after `{}`", out.command))
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

/// Waits until `log` has `needle` past byte `from`.
fn wait_for_log(log: &std::path::Path, from: u64, needle: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let bytes = std::fs::read(log).with_context(|| format!("cannot read {}", log.display()))?;
        let new = String::from_utf8_lossy(bytes.get(from as usize..).unwrap_or_default());
        if new.contains(needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "containerd's log {} has no {needle:?} (the trap message) within {timeout:?}; new lines: {new:?}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
