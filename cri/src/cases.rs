//! What the table-driven tests share: the kinds of container a handler runs (Wasm and native
//! on our shims, native only on runc, the reference), a test per handler, and a pod's
//! teardown that must leave nothing behind and reports every mismatch at once.

use std::fmt;

use anyhow::{Context, Result, bail};

use crate::images::{TCP_ECHO, TCP_ECHO_NATIVE};
use crate::leftovers::PodFootprint;
use crate::logs;
use crate::pod::{ContainerSpec, Pod};

/// `containerd_shim_wasm::NETWORK_ANNOTATION`: gives a Wasm module the network.
pub const NETWORK_ANNOTATION: &str = "io.containerd.wasm.network";

/// One test per handler for a check (a function of the handler in the test file):
/// `<check>::<handler>`, which checks nothing where the handler's shim is not built
/// ([`crate::skipped`]).
#[macro_export]
macro_rules! check_on {
    ($check:ident: $($handler:ident),+) => {
        mod $check {
            $(
                #[test]
                #[ignore = "needs the private containerd: run make test"]
                fn $handler() -> anyhow::Result<()> {
                    if $crate::skipped(stringify!($handler)) {
                        return Ok(());
                    }
                    super::$check(stringify!($handler))
                }
            )+
        }
    };
}

/// The two kinds of container a pod on our shims runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Wasm,
    Native,
}

impl Kind {
    /// The program an exec runs: the demo of the container's image.
    pub fn program(self) -> &'static str {
        match self {
            Self::Wasm => "/wasi-demo-app.wasm",
            Self::Native => "/native-demo",
        }
    }

    /// The demo of this kind with a sub-command (test-images/common/demo_commands.rs).
    pub fn demo(self, name: &str, args: &[&str]) -> ContainerSpec {
        match self {
            Self::Wasm => ContainerSpec::wasm(name, args),
            Self::Native => ContainerSpec::native(name, args),
        }
    }

    /// The TCP echo listener of this kind on `port` (the Wasm one with the network).
    pub fn listener(self, name: &str, port: u16) -> ContainerSpec {
        let port = port.to_string();
        match self {
            Self::Wasm => ContainerSpec::new(name, &TCP_ECHO, &[&port])
                .annotation(NETWORK_ANNOTATION, "allow"),
            Self::Native => ContainerSpec::new(name, &TCP_ECHO_NATIVE, &[&port]),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Wasm => "wasm",
            Self::Native => "native",
        })
    }
}

/// The kinds of container a handler runs: runc runs no Wasm.
pub fn kinds(handler: &str) -> &'static [Kind] {
    if handler == "runc" {
        &[Kind::Native]
    } else {
        &[Kind::Wasm, Kind::Native]
    }
}

/// The kinds of TCP listener a handler runs. The Wasm listener is a wasm32-wasip2 component
/// (WASI preview 1 cannot open a listening socket); WAMR and WasmEdge run no components (they
/// refuse the module at create), so on `wamr` and `wasmedge` only the native listener runs.
pub fn listener_kinds(handler: &str) -> &'static [Kind] {
    match handler {
        "runc" | "wamr" | "wasmedge" => &[Kind::Native],
        _ => &[Kind::Wasm, Kind::Native],
    }
}

/// A pod `<label>-<handler>` in which `check` runs once for each kind of container the handler
/// runs, recording the containers it makes; then [`finish`] with every failure, each labelled
/// with its kind.
pub fn for_each_kind(
    label: &str,
    handler: &str,
    mut check: impl FnMut(&mut Pod, Kind, &mut Vec<String>) -> Result<()>,
) -> Result<()> {
    let mut pod = Pod::run(&format!("{label}-{handler}"), handler)?;
    let mut containers = Vec::new();
    let mut failures = Vec::new();
    for kind in kinds(handler) {
        if let Err(e) = check(&mut pod, *kind, &mut containers) {
            failures.push(format!("{kind}: {e:#}"));
        }
    }
    finish(pod, &containers, failures)
}

/// Removes the pod (its leftover checks see everything of it gone) and fails with every
/// mismatch recorded in `failures`.
pub fn finish(mut pod: Pod, containers: &[String], mut failures: Vec<String>) -> Result<()> {
    let handler = pod.handler.clone();
    let ids: Vec<&str> = containers.iter().map(String::as_str).collect();
    let teardown = PodFootprint::observe(&mut pod, &ids).and_then(|footprint| {
        pod.stop().context("StopPodSandbox")?;
        pod.remove().context("RemovePodSandbox")?;
        footprint.expect_gone()
    });
    if let Err(e) = teardown {
        failures.push(format!("the pod's teardown: {e:#}"));
    }
    conclude(&handler, &failures)
}

/// Fails with every mismatch of `failures` on `handler`, or succeeds when there is none.
pub fn conclude(handler: &str, failures: &[String]) -> Result<()> {
    if failures.is_empty() {
        return Ok(());
    }
    bail!(
        "on handler {handler}, {} check(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    )
}

/// The stdout and stderr that CRI log file `path` holds, with its lines joined back.
pub fn logged_output(path: &std::path::Path) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the CRI log {}", path.display()))?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    for entry in logs::parse(&text).with_context(|| format!("the CRI log {}", path.display()))? {
        let stream = if entry.stream == "stdout" {
            &mut stdout
        } else {
            &mut stderr
        };
        stream.push_str(&entry.content);
        if !entry.partial {
            stream.push('\n');
        }
    }
    Ok((stdout, stderr))
}
