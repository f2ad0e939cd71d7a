//! The `docker` CLI against the private Docker Engine of `scripts/dockerd.sh` (dockerd 28 on
//! the private containerd 2.1), as a Docker user types it.
//!
//! dockerd keeps its containers in containerd namespace `moby` and, with its default cgroupfs
//! driver, puts each in cgroup `/docker/<full id>`: [`scope`] tells the leftover checks.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::container::unique_id;
use crate::ctr::{CmdOutput, shell_quote};
use crate::environment::containerd;
use crate::images::TestImage;
use crate::leftovers::Scope;
use crate::target::Target;

const HOW_TO_RUN: &str = "these tests need the private dockerd: run `make test` (or \
     `WASM_SHIMS_CONTAINERD=2.1 scripts/containerd.sh run scripts/dockerd.sh run cargo test ...`)";

/// Deadline for a `docker` call that is not given its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where dockerd's containers are named after their id (see the module's documentation).
pub fn scope() -> Scope {
    Scope {
        namespace: "moby".to_owned(),
        cgroup_parent: "docker".to_owned(),
    }
}

/// One `docker` invocation, with a deadline after which it is killed (a hung container then
/// fails its test instead of hanging the run).
#[derive(Debug, Clone)]
pub struct Docker {
    args: Vec<String>,
    /// dockerd's address; `None`: `DOCKER_HOST`, the suite's dockerd.
    host: Option<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Docker {
    pub fn new<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Self {
        Self {
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            host: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Pipes `data` into docker's stdin, then closes it; without this stdin is `/dev/null`.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Talks to `dockerd` instead of the suite's.
    pub fn at(mut self, dockerd: &Dockerd) -> Self {
        self.host = Some(dockerd.host.clone());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs docker to completion; an error means it could not run or hit its deadline, not
    /// that it exited non-zero.
    pub fn output(self) -> Result<CmdOutput> {
        require_dockerd();
        let command = std::iter::once("docker")
            .chain(self.args.iter().map(String::as_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        // timeout(1) exits 124 when the deadline passed.
        let mut child = Command::new("timeout")
            .arg(self.timeout.as_secs().to_string())
            .arg("docker")
            .args(self.host.iter().flat_map(|host| ["--host", host]))
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{command}`"))?;
        let writer = match (self.stdin, child.stdin.take()) {
            // docker may exit before reading everything: its exit code tells that story.
            (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let output = child.wait_with_output()?;
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let out = CmdOutput {
            command,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if out.code == Some(124) {
            bail!(
                "`{}` did not finish within {:?} (killed it): {}",
                out.command,
                self.timeout,
                out.describe()
            );
        }
        Ok(out)
    }

    /// Runs docker and fails unless it exits 0; its stdout.
    pub fn stdout(self) -> Result<String> {
        Ok(self.output()?.success()?.stdout.clone())
    }
}

/// Panics with instructions when the private dockerd is not there, so that a test run
/// without it fails instead of passing vacuously.
fn require_dockerd() {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let Some(socket) = host.strip_prefix("unix://") else {
        panic!("DOCKER_HOST={host:?} is not the private dockerd's unix socket: {HOW_TO_RUN}");
    };
    assert!(
        std::path::Path::new(socket).exists(),
        "DOCKER_HOST={host}: no such socket: {HOW_TO_RUN}"
    );
}

/// `docker load`s `image` unless this test binary already did.
pub fn ensure_loaded(image: &'static TestImage) -> Result<()> {
    static LOADED: Mutex<BTreeMap<&str, Result<(), String>>> = Mutex::new(BTreeMap::new());
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded
        .entry(image.reference)
        .or_insert_with(|| load(image).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// `docker load` of the image's tarball; fails unless docker names the image it loaded.
pub fn load(image: &TestImage) -> Result<()> {
    let out = Docker::new(["load"])
        .stdin(image.archive()?)
        .timeout(Duration::from_secs(120))
        .output()?;
    out.success()?;
    // docker names the image without the registry and library/ that the reference spells out.
    let short = image
        .reference
        .strip_prefix("docker.io/library/")
        .unwrap_or(image.reference);
    if !out.stdout.contains(&format!("Loaded image: {short}")) {
        bail!(
            "`{}` did not report loading {short}: {}",
            out.command,
            out.describe()
        );
    }
    Ok(())
}

/// A container name unique in this run (see [`unique_id`]).
pub fn container_name(label: &str, target: &Target) -> String {
    unique_id(label, target.runtime)
}

/// `docker run` arguments for `target`: the container's name, the runtime and the image's
/// platform (options), to be followed by the image and the program's arguments.
pub fn run_options(name: &str, target: &Target) -> Vec<String> {
    let image = target.workload.image();
    [
        "--name",
        name,
        "--runtime",
        target.runtime.runtime_type,
        "--platform",
        image.platform,
    ]
    .map(str::to_owned)
    .into()
}

/// The full id of container `name`.
pub fn full_id(name: &str) -> Result<String> {
    Ok(Docker::new(["inspect", "--format", "{{.Id}}", name])
        .stdout()?
        .trim()
        .to_owned())
}

/// A field of `docker inspect` (a Go template such as `{{.State.Status}}`), trimmed.
pub fn inspect(name: &str, format: &str) -> Result<String> {
    Ok(Docker::new(["inspect", "--format", format, name])
        .stdout()?
        .trim()
        .to_owned())
}

/// Removes container `name` whatever its state (`docker rm -f`), for cleanup after a failure.
pub fn remove(name: &str) {
    let _ = Docker::new(["rm", "--force", name]).output();
}

/// Another private dockerd on the suite's containerd (`scripts/dockerd.sh` with its own
/// state dir), for a daemon setting the suite's dockerd does not have; stopped when dropped.
#[derive(Debug)]
pub struct Dockerd {
    env: Vec<(&'static str, String)>,
    host: String,
}

impl Dockerd {
    /// Starts a dockerd whose cgroup driver is `cgroup_driver` (`cgroupfs`, `systemd`), its
    /// state in `<containerd's state dir>/docker-<label>`.
    pub fn start(label: &str, cgroup_driver: &str) -> Result<Self> {
        let state = containerd()
            .address
            .parent()
            .context("containerd's socket has no directory")?
            .join(format!("docker-{label}"));
        let env = vec![
            ("WASM_SHIMS_DOCKER_STATE", state.display().to_string()),
            ("WASM_SHIMS_DOCKER_CGROUP_DRIVER", cgroup_driver.to_owned()),
        ];
        dockerd_script("start", &env)?;
        let mut dockerd = Self {
            env,
            host: String::new(),
        };
        let exports = dockerd_script("env", &dockerd.env)?;
        dockerd.host = exports
            .lines()
            .find_map(|line| line.strip_prefix("export DOCKER_HOST="))
            .with_context(|| format!("scripts/dockerd.sh env printed no DOCKER_HOST: {exports}"))?
            .to_owned();
        Ok(dockerd)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Err(e) = dockerd_script("stop", &self.env) {
            eprintln!("shim-conformance: {e:#}");
        }
    }
}

/// Runs `scripts/dockerd.sh VERB` with `env` added to the suite's environment; fails with
/// its stderr unless it succeeds. Returns its stdout.
fn dockerd_script(verb: &str, env: &[(&str, String)]) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dockerd.sh");
    let output = Command::new(&script)
        .arg(verb)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .with_context(|| format!("cannot run {} {verb}", script.display()))?;
    if !output.status.success() {
        bail!(
            "`{} {verb}` failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
