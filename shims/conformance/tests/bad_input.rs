//! Inputs no shim can run. Each must fail at task create with an error that names the file
//! and says why, leave nothing behind, and leave the shim serving the other containers of
//! its pod: the bad container joins the shim of a running "sandbox" container (annotation
//! `io.kubernetes.cri.sandbox-id`), which must keep running and answering afterwards.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status, unique_id};
use shim_conformance::ctr::RunningCtr;
use shim_conformance::environment::containerd;
use shim_conformance::expect::{self, EXIT_SIGKILL, failed_at_create, message_explains};
use shim_conformance::images::{BAD_INPUTS, bad};
use shim_conformance::leftovers::{expect_no_leftovers, leftovers_of};
use shim_conformance::target::{Target, all_targets, check_targets, native_targets};

const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// Targets whose runtime is a Wasm shim (running either demo as the sandbox).
fn wasm_shim_targets() -> Vec<Target> {
    all_targets()
        .into_iter()
        .filter(|target| target.runtime.runs_wasm)
        .collect()
}

/// runc is a reference here: it also fails at create for a missing executable.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn missing_module() {
    check_targets(&all_targets(), |target, test| {
        bad_input(
            target,
            test,
            &[bad::MISSING_MODULE],
            &[bad::MISSING_MODULE],
            expect::MISSING_FILE,
        )
    });
}

/// Not a reference case for runc: runc finds the executable bit at create and fails only
/// when exec(2) says "exec format error" after start.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn text_file_as_entrypoint() {
    check_targets(&wasm_shim_targets(), |target, test| {
        bad_input(
            target,
            test,
            &[bad::TEXT_FILE],
            &[bad::TEXT_FILE],
            expect::NOT_RUNNABLE,
        )
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn invalid_module() {
    check_targets(&wasm_shim_targets(), |target, test| {
        bad_input(
            target,
            test,
            &[bad::INVALID_MODULE],
            &[bad::INVALID_MODULE],
            expect::INVALID_MODULE,
        )
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn module_importing_a_function_no_engine_provides() {
    check_targets(&wasm_shim_targets(), |target, test| {
        bad_input(
            target,
            test,
            &[bad::UNRESOLVED_IMPORT],
            &[bad::UNRESOLVED_IMPORT, bad::MISSING_IMPORT],
            expect::UNRESOLVED_IMPORT,
        )
    });
}

/// The bad-inputs image has neither entrypoint nor command, so process.args is empty.
/// runc is a reference: "args must not be empty" at create.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn empty_args() {
    check_targets(&all_targets(), |target, test| {
        bad_input(target, test, &[], &["args"], expect::EMPTY_ARGS)
    });
}

/// ctr parses specs itself, so the spec that is not JSON goes through the API; containerd
/// writes it verbatim as the bundle's config.json. A sandbox cannot be joined here (the
/// annotation would be in that spec): the runtime must fail cleanly and still run the
/// next container. runc is the reference for that much; its message ("failed to start
/// shim: unexpected end of JSON input") does not name the file, which ours must, and
/// containerd 1.6 leaves an empty bundle directory after runc's shim fails in `start`
/// (it reads config.json there), which ours must not.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn malformed_config_json() {
    // One target per runtime: runc (the reference) and each Wasm shim.
    check_targets(&native_targets(), |target, test| {
        let api = Api::connect()?;
        let id = unique_id(test, target.runtime);
        api.create_container_with_raw_spec(
            &id,
            target.runtime.runtime_type,
            br#"{"ociVersion": "1.0.2", "process": {"args": ["/x"#,
        )?;
        let created = api.create_task(&id);
        let cleanup = api.delete_container(&id);
        match created {
            Ok(pid) => bail!("task {id} with a malformed config.json was created (pid {pid})"),
            Err(error) if target.runtime.runs_wasm => message_explains(
                &format!("{error:#}"),
                &["config.json"],
                expect::MALFORMED_SPEC,
            )
            .with_context(|| format!("creating task {id}: {error:#}"))?,
            Err(_) => {}
        }
        cleanup?;
        if target.runtime.runs_wasm {
            expect_no_leftovers(&id)?;
        } else {
            expect_only_an_empty_bundle(&id)?;
        }
        target
            .run(&format!("after-{test}"), &["echo", "still serving"])?
            .expect(0, "still serving\n")
    });
}

/// What runc leaves after failing in `start` (see [`malformed_config_json`]).
fn expect_only_an_empty_bundle(id: &str) -> Result<()> {
    let bundle = containerd().bundle_dir(id);
    let empty = std::fs::read_dir(&bundle).is_ok_and(|mut entries| entries.next().is_none());
    let others: Vec<String> = leftovers_of(id)
        .into_iter()
        .filter(|item| !item.starts_with("bundle "))
        .collect();
    if !others.is_empty() || !empty {
        bail!(
            "runc left more than the known empty bundle of {id} (empty bundle: {empty}): {others:?}"
        );
    }
    Ok(())
}

/// Runs `args` from the bad-inputs image inside a running sandbox of `target`, and checks
/// the failure, the cleanup and the sandbox.
fn bad_input(
    target: &Target,
    test: &str,
    args: &[&str],
    names: &[&str],
    reasons: &[&str],
) -> Result<()> {
    let sandbox = Sandbox::start(target, test)?;
    let bad = Container::new(test, target.runtime, &BAD_INPUTS)
        .in_sandbox(sandbox.id())
        .annotation(CONTAINER_TYPE, "container");
    let out = bad.run(args)?;
    failed_at_create(&out, names, reasons)?;
    expect_no_leftovers(bad.id())?;
    sandbox.still_serves(test)
}

/// A long-running container whose shim other containers join, as a pod's sandbox.
struct Sandbox {
    target: Target,
    container: Container,
    running: RunningCtr,
}

impl Sandbox {
    fn start(target: &Target, test: &str) -> Result<Self> {
        let container = target.container(&format!("sandbox-{test}"));
        let id = container.id().to_owned();
        let container = container
            .annotation(SANDBOX_ID, &id)
            .annotation(CONTAINER_TYPE, "sandbox");
        let mut running = container.spawn(&target.args(&["sleep", "600"]))?;
        running.wait_for_stdout("sleeping 600", Duration::from_secs(20))?;
        Ok(Self {
            target: *target,
            container,
            running,
        })
    }

    fn id(&self) -> &str {
        self.container.id()
    }

    /// The sandbox still runs, a new container joins its shim and runs, and the sandbox
    /// answers Kill and Wait.
    fn still_serves(self, test: &str) -> Result<()> {
        let task = self.container.task()?;
        if task.map(|t| t.status) != Some(Status::Running) {
            bail!(
                "sandbox {} is no longer running after the failed create: {task:?}",
                self.id()
            );
        }
        self.target
            .container(&format!("after-{test}"))
            .annotation(SANDBOX_ID, self.id())
            .annotation(CONTAINER_TYPE, "container")
            .run(&self.target.args(&["echo", "still serving"]))?
            .expect(0, "still serving\n")
            .context("the sandbox's shim does not run a new container after the failed one")?;
        self.container.kill("SIGKILL")?;
        self.running
            .wait(Duration::from_secs(10))?
            .expect(EXIT_SIGKILL, "sleeping 600\n")
            .context("the sandbox does not answer Kill/Wait after the failed create")
    }
}
