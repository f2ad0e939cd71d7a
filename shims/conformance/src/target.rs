//! What each test runs on: a runtime plus the demo program it runs, and the harness that
//! runs one check on every target and reports every failure, not only the first.

use std::fmt;

use std::time::Duration;

use anyhow::Result;

use crate::container::{CONTAINER_TYPE_ANNOTATION, Container, SANDBOX_ID_ANNOTATION, Status};
use crate::engines::{RUNC, Runtime, available_engines};
use crate::images::{NATIVE_DEMO, TestImage, WASI_DEMO_APP};
use crate::results;

/// The demo program a target runs; both implement the same sub-commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `/wasi-demo-app.wasm` from the wasi-demo-app image.
    Wasm,
    /// `/native-demo` (static ELF) from the native-demo image.
    Native,
}

impl Workload {
    /// `wasm` or `native`, as in the results file.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Wasm => "wasm",
            Workload::Native => "native",
        }
    }

    pub fn image(self) -> &'static TestImage {
        match self {
            Workload::Wasm => &WASI_DEMO_APP,
            Workload::Native => &NATIVE_DEMO,
        }
    }

    /// args[0]: the program's path in the image.
    pub fn program(self) -> &'static str {
        match self {
            Workload::Wasm => "/wasi-demo-app.wasm",
            Workload::Native => "/native-demo",
        }
    }

    /// What the program prints with no sub-command.
    pub fn greeting(self) -> &'static str {
        match self {
            Workload::Wasm => "hello from wasi-demo-app\n",
            Workload::Native => "hello from native-demo\n",
        }
    }
}

/// A runtime running a workload: `wasmtime/wasm`, `runc/native` (the reference), or
/// `wasmtime/native` (hybrid: a native container through a Wasm shim).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub runtime: &'static Runtime,
    pub workload: Workload,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let workload = match self.workload {
            Workload::Wasm => "wasm",
            Workload::Native if self.runtime.runs_wasm => "native (hybrid)",
            Workload::Native => "native",
        };
        write!(f, "{} {workload}", self.runtime.runtime_type)
    }
}

impl Target {
    /// A fresh container of this target's image on this target's runtime.
    pub fn container(&self, label: &str) -> Container {
        Container::new(label, self.runtime, self.workload.image())
    }

    /// process.args: the program, then `args`.
    pub fn args<'a>(&self, args: &[&'a str]) -> Vec<&'a str> {
        std::iter::once(self.workload.program())
            .chain(args.iter().copied())
            .collect()
    }

    /// A pod's sandbox container (`sandbox-<label>`, annotated as CRI annotates one), started
    /// detached running `sleep 600`: its shim takes the pod's other containers.
    pub fn sleeping_sandbox(&self, label: &str) -> Result<Container> {
        let sandbox = self.container(&format!("sandbox-{label}"));
        let id = sandbox.id().to_owned();
        self.start_sleeping(
            sandbox
                .annotation(SANDBOX_ID_ANNOTATION, &id)
                .annotation(CONTAINER_TYPE_ANNOTATION, "sandbox"),
        )
    }

    /// A container of the pod of `sandbox_id` (`member-<label>`), started detached running
    /// `sleep 600`.
    pub fn sleeping_member(&self, label: &str, sandbox_id: &str) -> Result<Container> {
        self.start_sleeping(self.pod_member(label, sandbox_id))
    }

    /// Starts `container` detached running `sleep 600`; returns once it runs.
    fn start_sleeping(&self, container: Container) -> Result<Container> {
        container.run_detached(&self.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, Duration::from_secs(10))?;
        Ok(container)
    }

    /// A container of the pod of `sandbox_id` (`member-<label>`), not started.
    pub fn pod_member(&self, label: &str, sandbox_id: &str) -> Container {
        self.container(&format!("member-{label}"))
            .in_sandbox(sandbox_id)
            .annotation(CONTAINER_TYPE_ANNOTATION, "container")
    }

    /// Runs the program with `args` in a fresh container (`ctr run --rm`).
    pub fn run(&self, label: &str, args: &[&str]) -> Result<crate::ctr::CmdOutput> {
        self.container(label).run(&self.args(args))
    }

    pub fn is_wasm(&self) -> bool {
        self.workload == Workload::Wasm
    }
}

/// Targets whose runtime is one of our shims (running either demo): runc left out.
pub fn wasm_shim_targets() -> Vec<Target> {
    all_targets()
        .into_iter()
        .filter(|target| target.runtime.runs_wasm)
        .collect()
}

/// Every Wasm engine running the Wasm demo.
pub fn wasm_targets() -> Vec<Target> {
    available_engines()
        .iter()
        .map(|&runtime| Target {
            runtime,
            workload: Workload::Wasm,
        })
        .collect()
}

/// The native demo on runc (the reference) and on every Wasm engine (hybrid).
pub fn native_targets() -> Vec<Target> {
    std::iter::once(&RUNC)
        .chain(available_engines().iter().copied())
        .map(|runtime| Target {
            runtime,
            workload: Workload::Native,
        })
        .collect()
}

/// The reference, every engine with the Wasm demo, and every engine with the native demo.
pub fn all_targets() -> Vec<Target> {
    let mut targets = native_targets();
    targets.extend(wasm_targets());
    targets
}

/// Runs `check` on every target at once (one thread each) and panics with every failure,
/// each labelled with its target, so one broken engine does not hide the others' results.
/// `check` gets the target and the test's name (a label for container ids).
pub fn check_targets(targets: &[Target], check: impl Fn(&Target, &str) -> Result<()> + Sync) {
    let test = test_name();
    let failures = on_each_at_once(targets, &test, &check);
    conclude(targets.len(), record(&test, targets, &failures));
}

/// One row of a table-driven test. Its name stands for the row where a test function's name
/// would: in the results file (so in docs/engines.md) and in the labels of its containers.
#[derive(Debug)]
pub struct Case<T> {
    pub name: &'static str,
    /// The targets the row runs on (e.g. [`wasm_shim_targets`]).
    pub targets: fn() -> Vec<Target>,
    /// What the row checks.
    pub input: T,
}

/// Checks each row of a table as [`check_targets`] checks a test (its targets at once), one
/// row after the other, and records each under its own name; then panics with every failure
/// of every row, so one broken row does not hide the others' results.
pub fn check_cases<T: Sync>(
    cases: &[Case<T>],
    check: impl Fn(&T, &Target, &str) -> Result<()> + Sync,
) {
    let mut checked = 0;
    let mut failed = Vec::new();
    for case in cases {
        let targets = (case.targets)();
        let failures = on_each_at_once(&targets, case.name, &|target, test| {
            check(&case.input, target, test)
        });
        checked += targets.len();
        failed.extend(
            record(case.name, &targets, &failures)
                .into_iter()
                .map(|failure| format!("{}: {failure}", case.name)),
        );
    }
    conclude(checked, failed);
}

/// Runs `check` on every target at once, one thread each; the failure of each target. A
/// target whose runtime does not support the test is not checked (it is recorded as such).
fn on_each_at_once(
    targets: &[Target],
    test: &str,
    check: &(impl Fn(&Target, &str) -> Result<()> + Sync),
) -> Vec<Option<String>> {
    std::thread::scope(|scope| {
        let running: Vec<_> = targets
            .iter()
            .map(|target| {
                (target.runtime.unsupported(test).is_none())
                    .then(|| scope.spawn(move || check(target, test)))
            })
            .collect();
        running
            .into_iter()
            .map(|handle| failure(handle.map_or(Ok(Ok(())), |handle| handle.join())))
            .collect()
    })
}

/// Like [`check_targets`], one target after the other: for checks that load the machine
/// themselves (many containers at once).
pub fn check_targets_in_turn(targets: &[Target], check: impl Fn(&Target, &str) -> Result<()>) {
    let test = test_name();
    let failures: Vec<Option<String>> = targets
        .iter()
        .map(|target| {
            if target.runtime.unsupported(&test).is_some() {
                return None;
            }
            failure(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || check(target, &test),
            )))
        })
        .collect();
    conclude(targets.len(), record(&test, targets, &failures));
}

/// The running test's name (libtest names the test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .map(|name| name.rsplit("::").next().unwrap_or(name).to_owned())
        .unwrap_or_else(|| "test".to_owned())
}

/// Why a check failed (an error or a panic), or `None` when it passed.
fn failure(outcome: std::thread::Result<Result<()>>) -> Option<String> {
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("{error:#}")),
        Err(panic) => Some(format!("panicked: {}", panic_message(&panic))),
    }
}

/// Records every target's outcome in test `test` (see [`crate::results`]); returns the
/// failures, each labelled with its target.
fn record(test: &str, targets: &[Target], failures: &[Option<String>]) -> Vec<String> {
    results::record_test(test, targets, failures);
    targets
        .iter()
        .zip(failures)
        .filter_map(|(target, failure)| Some(format!("[{target}] {}", failure.as_ref()?)))
        .collect()
}

/// Panics with every failure of the `checked` targets, if there is one.
fn conclude(checked: usize, failed: Vec<String>) {
    assert!(
        failed.is_empty(),
        "{} of {checked} targets failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".to_owned())
}
