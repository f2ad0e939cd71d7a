//! Inputs no shim can run. Each must fail at task create with an error that names the file
//! and says why, leave nothing behind, and leave the shim serving the other containers of
//! its pod: the bad container joins the shim of a running "sandbox" container (annotation
//! `io.kubernetes.cri.sandbox-id`), which must keep running and answering afterwards.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::api::Api;
use shim_conformance::container::{
    CONTAINER_TYPE_ANNOTATION as CONTAINER_TYPE, Container, SANDBOX_ID_ANNOTATION as SANDBOX_ID,
    Status,
};
use shim_conformance::containerd_log::LogTail;
use shim_conformance::ctr::RunningCtr;
use shim_conformance::expect::{self, EXIT_SIGKILL, EXIT_TRAP, failed_at_create, message_explains};
use shim_conformance::images::{BAD_INPUTS, HOSTILE, TestImage, bad, hostile};
use shim_conformance::leftovers::expect_no_leftovers;
use shim_conformance::target::{
    Case, Target, all_targets, check_cases, check_targets, wasm_shim_targets,
};

/// A file no shim can run: `args` from `image`, run in a sandbox's pod, must fail at create
/// with an error that names `names` and gives one of `reasons`.
struct BadFile {
    image: &'static TestImage,
    args: &'static [&'static str],
    names: &'static [&'static str],
    reasons: &'static [&'static str],
}

const BAD_FILES: &[Case<BadFile>] = &[
    // runc is a reference here: it also fails at create for a missing executable.
    Case {
        name: "missing_module",
        targets: all_targets,
        input: BadFile {
            image: &BAD_INPUTS,
            args: &[bad::MISSING_MODULE],
            names: &[bad::MISSING_MODULE],
            reasons: expect::MISSING_FILE,
        },
    },
    // Not a reference case for runc: runc finds the executable bit at create and fails only
    // when exec(2) says "exec format error" after start.
    Case {
        name: "text_file_as_entrypoint",
        targets: wasm_shim_targets,
        input: BadFile {
            image: &BAD_INPUTS,
            args: &[bad::TEXT_FILE],
            names: &[bad::TEXT_FILE],
            reasons: expect::NOT_RUNNABLE,
        },
    },
    Case {
        name: "invalid_module",
        targets: wasm_shim_targets,
        input: BadFile {
            image: &BAD_INPUTS,
            args: &[bad::INVALID_MODULE],
            names: &[bad::INVALID_MODULE],
            reasons: expect::INVALID_MODULE,
        },
    },
    Case {
        name: "module_importing_a_function_no_engine_provides",
        targets: wasm_shim_targets,
        input: BadFile {
            image: &BAD_INPUTS,
            args: &[bad::UNRESOLVED_IMPORT],
            names: &[bad::UNRESOLVED_IMPORT, bad::MISSING_IMPORT],
            reasons: expect::UNRESOLVED_IMPORT,
        },
    },
    // The bad-inputs image has neither entrypoint nor command, so process.args is empty.
    // runc is a reference: "args must not be empty" at create.
    Case {
        name: "empty_args",
        targets: all_targets,
        input: BadFile {
            image: &BAD_INPUTS,
            args: &[],
            names: &["args"],
            reasons: expect::EMPTY_ARGS,
        },
    },
    Case {
        name: "truncated_module",
        targets: wasm_shim_targets,
        input: BadFile {
            image: &HOSTILE,
            args: &[hostile::TRUNCATED],
            names: &[hostile::TRUNCATED],
            reasons: expect::INVALID_MODULE,
        },
    },
    // Larger than `WASM_SHIM_MAX_MODULE_SIZE` (the private containerd sets 32M): refused
    // before it is read whole, with its size and the limit.
    Case {
        name: "module_over_the_size_limit",
        targets: wasm_shim_targets,
        input: BadFile {
            image: &HOSTILE,
            args: &[hostile::OVERSIZED],
            names: &[hostile::OVERSIZED, "WASM_SHIM_MAX_MODULE_SIZE"],
            reasons: expect::TOO_LARGE,
        },
    },
];

/// Runs each of [`BAD_FILES`] in a running sandbox's pod (each row recorded under its own
/// name) and checks the failure, the cleanup and the sandbox.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn files_no_shim_can_run() {
    check_cases(BAD_FILES, |case, target, test| {
        let sandbox = Sandbox::start(target, test)?;
        let bad = Container::new(test, target.runtime, case.image)
            .in_sandbox(sandbox.id())
            .annotation(CONTAINER_TYPE, "container");
        let out = bad.run(case.args)?;
        failed_at_create(&out, case.names, case.reasons)?;
        expect_no_leftovers(bad.id())?;
        sandbox.still_serves(test)
    });
}

/// A module whose start function traps passes create (it is valid and links), and the trap
/// comes when it is instantiated after `start`: the task exits with 134, the trap is in the
/// shim log, and the pod's shim goes on.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn start_function_that_traps() {
    check_targets(&wasm_shim_targets(), |target, test| {
        let sandbox = Sandbox::start(target, test)?;
        let log = LogTail::now()?;
        let bad = Container::new(test, target.runtime, &HOSTILE)
            .in_sandbox(sandbox.id())
            .annotation(CONTAINER_TYPE, "container");
        bad.run(&[hostile::START_TRAPS])?.expect(EXIT_TRAP, "")?;
        log.wait_for(
            &format!("a trap message of {}", bad.id()),
            |record| {
                record.field("id") == Some(bad.id())
                    && record.message().is_some_and(|m| {
                        m.contains(hostile::START_TRAPS) && m.contains("unreachable")
                    })
            },
            Duration::from_secs(10),
        )?;
        expect_no_leftovers(bad.id())?;
        sandbox.still_serves(test)
    });
}

/// Modules with a few random bytes changed, inserted or removed (a fixed seed: the same
/// modules every run). Most are invalid and must fail at create with a message naming the
/// file; one that happens to stay valid must run to an exit. Either way nothing is left and
/// the pod's shim serves on.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn fuzzed_modules() {
    check_targets(&wasm_shim_targets(), |target, test| {
        let sandbox = Sandbox::start(target, test)?;
        let mut refused = 0;
        for n in 0..hostile::FUZZED {
            let module = hostile::fuzzed(n);
            let bad = Container::new(&format!("{test}-{n}"), target.runtime, &HOSTILE)
                .in_sandbox(sandbox.id())
                .annotation(CONTAINER_TYPE, "container");
            let out = bad.run(&[&module])?;
            if expect::is_create_failure(&out) {
                let reasons: Vec<&str> = expect::INVALID_MODULE
                    .iter()
                    .chain(expect::UNRESOLVED_IMPORT)
                    .chain(&["export"])
                    .copied()
                    .collect();
                failed_at_create(&out, &[&module], &reasons)?;
                refused += 1;
            }
            expect_no_leftovers(bad.id())?;
        }
        ensure!(
            refused > 0,
            "none of the {} fuzzed modules was refused: the mutations do not reach the engine",
            hostile::FUZZED
        );
        sandbox.still_serves(test)
    });
}

// A config.json that is not JSON at all never reaches a shim with containerd 1.6:
// containerd parses the spec itself when it writes the bundle (to find user-namespace
// GID mappings), fails with "failed to start shim: unexpected end of JSON input" for runc
// and for ours alike, and leaves an empty bundle directory behind. What does reach the
// shim is JSON that Go's decoder accepts and a strict one must not, and a spec that is
// JSON but not runnable; ctr writes neither, so the spec is replaced through the API.

/// A spec no shim can run, made from the one ctr wrote. Task create must fail with an error
/// that names `names` and gives one of `reasons` for each of `corruptions` in turn.
struct BadSpec {
    corruptions: &'static [Corruption],
}

struct Corruption {
    names: &'static [&'static str],
    reasons: &'static [&'static str],
    /// The spec's bytes from ctr's spec.
    corrupt: fn(serde_json::Value) -> Vec<u8>,
}

const BAD_SPECS: &[Case<BadSpec>] = &[
    // Invalid UTF-8 inside a string: not JSON (RFC 8259), but Go's decoder, which containerd
    // uses, replaces such bytes and goes on. The spec is otherwise the one ctr wrote.
    Case {
        name: "config_json_that_is_not_utf8",
        targets: wasm_shim_targets,
        input: BadSpec {
            corruptions: &[Corruption {
                names: &["config.json"],
                reasons: expect::MALFORMED_SPEC,
                corrupt: |mut spec| {
                    const MARK: &str = "conformance-not-utf8";
                    spec["annotations"]["conformance.example/bad-bytes"] = MARK.into();
                    replace_mark(&spec, MARK, b"\xff\xfe not UTF-8")
                },
            }],
        },
    },
    // Valid JSON without a process: nothing to run. runc is a reference for the failure.
    Case {
        name: "config_json_without_process",
        targets: all_targets,
        input: BadSpec {
            corruptions: &[Corruption {
                names: &[],
                reasons: expect::NO_PROCESS,
                corrupt: |mut spec| {
                    spec.as_object_mut()
                        .expect("a spec is a JSON object")
                        .remove("process");
                    json(&spec)
                },
            }],
        },
    },
    // Fields of the wrong JSON type: Go's decoder in containerd refuses them before any shim
    // is asked, for runc and ours alike; the error must say what is wrong.
    Case {
        name: "config_json_with_wrong_types",
        targets: all_targets,
        input: BadSpec {
            corruptions: &[Corruption {
                names: &[],
                reasons: expect::MALFORMED_SPEC,
                corrupt: |mut spec| {
                    spec["process"]["args"] = "not a list".into();
                    json(&spec)
                },
            }],
        },
    },
    // Invalid UTF-8 inside `process.env`: the module could not be given such a variable, and
    // a strict decoder refuses the spec.
    Case {
        name: "config_json_with_an_env_that_is_not_utf8",
        targets: wasm_shim_targets,
        input: BadSpec {
            corruptions: &[Corruption {
                names: &["config.json"],
                reasons: expect::MALFORMED_SPEC,
                corrupt: |mut spec| {
                    const MARK: &str = "CONFORMANCE_NOT_UTF8=mark";
                    spec["process"]["env"]
                        .as_array_mut()
                        .expect("ctr writes process.env")
                        .push(MARK.into());
                    replace_mark(&spec, MARK, b"BAD=\xff\xfe")
                },
            }],
        },
    },
    // Arguments Linux would not pass to a program (one of 200 KiB; 3 MiB in all): refused at
    // create, naming the argument, for Wasm and native containers alike. Not for runc, which
    // creates the task and fails only at start, when execve says E2BIG.
    Case {
        name: "config_json_with_huge_args",
        targets: wasm_shim_targets,
        input: BadSpec {
            corruptions: &[
                Corruption {
                    names: &["process.args[2]"],
                    reasons: &["bytes"],
                    corrupt: |mut spec| {
                        let args = spec["process"]["args"]
                            .as_array_mut()
                            .expect("ctr writes process.args");
                        args.truncate(2);
                        args.push("x".repeat(200 << 10).into());
                        json(&spec)
                    },
                },
                Corruption {
                    names: &["ARG_MAX"],
                    reasons: &["bytes"],
                    corrupt: |mut spec| {
                        let args = spec["process"]["args"]
                            .as_array_mut()
                            .expect("ctr writes process.args");
                        args.extend((0..48).map(|_| serde_json::Value::from("y".repeat(64 << 10))));
                        json(&spec)
                    },
                },
            ],
        },
    },
];

/// Creates a container with each of [`BAD_SPECS`] (each row recorded under its own name)
/// through the API, and checks the failure, the cleanup and the sandbox (see [`bad_spec`]).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn specs_no_shim_can_run() {
    check_cases(BAD_SPECS, |case, target, test| {
        case.corruptions
            .iter()
            .try_for_each(|corruption| bad_spec(target, test, corruption))
    });
}

fn json(spec: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(spec).expect("a JSON value serializes")
}

/// `spec` as JSON with `bytes` where the text `mark` was.
fn replace_mark(spec: &serde_json::Value, mark: &str, bytes: &[u8]) -> Vec<u8> {
    let text = json(spec);
    let at = text
        .windows(mark.len())
        .position(|window| window == mark.as_bytes())
        .expect("the mark is in the spec");
    [&text[..at], bytes, &text[at + mark.len()..]].concat()
}

/// Creates a container of the demo in a running sandbox of `target`, replaces its spec
/// with the corrupted one, and checks that task create fails with an error that names the
/// corruption's `names` and gives one of its `reasons`, that nothing is left, and that the
/// sandbox serves.
fn bad_spec(target: &Target, test: &str, corruption: &Corruption) -> Result<()> {
    let sandbox = Sandbox::start(target, test)?;
    let bad = target
        .container(test)
        .in_sandbox(sandbox.id())
        .annotation(CONTAINER_TYPE, "container");
    bad.create(&target.args(&["echo", "must not run"]))?;
    let api = Api::connect()?;
    let spec = serde_json::from_slice(&api.spec(bad.id())?)
        .with_context(|| format!("ctr wrote a spec for {} that is not JSON", bad.id()))?;
    api.set_spec(bad.id(), (corruption.corrupt)(spec))?;
    match api.create_task(bad.id()) {
        Ok(pid) => bail!(
            "the task of {} was created (pid {pid}) from a bad spec",
            bad.id()
        ),
        Err(error) => message_explains(&format!("{error:#}"), corruption.names, corruption.reasons)
            .with_context(|| format!("{error:#}"))?,
    }
    bad.delete()?;
    expect_no_leftovers(bad.id())?;
    sandbox.still_serves(test)
}

/// A long-running container whose shim other containers join, as a pod's sandbox.
struct Sandbox {
    target: Target,
    // Dropped first: ctr stops waiting before the container's cleanup deletes the task.
    running: RunningCtr,
    container: Container,
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
        let next = self
            .target
            .container(&format!("after-{test}"))
            .annotation(SANDBOX_ID, self.id())
            .annotation(CONTAINER_TYPE, "container");
        next.run(&self.target.args(&["echo", "still serving"]))?
            .expect(0, "still serving\n")
            .context("the sandbox's shim does not run a new container after the failed one")?;
        expect_no_leftovers(next.id())?;
        let id = self.id().to_owned();
        self.container.kill("SIGKILL")?;
        self.running
            .wait(Duration::from_secs(10))?
            .expect(EXIT_SIGKILL, "sleeping 600\n")
            .context("the sandbox does not answer Kill/Wait after the failed create")?;
        expect_no_leftovers(&id)
    }
}
