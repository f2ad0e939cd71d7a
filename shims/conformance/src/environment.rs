//! The private containerd the suite talks to, as described by `scripts/containerd.sh env`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

const HOW_TO_RUN: &str = "these tests need the private containerd: run `make test` \
     (or `scripts/containerd.sh start` and export what `scripts/containerd.sh env` prints)";

/// Where a client reaches containerd: its gRPC socket and the containerd namespace it works
/// in. The suite's comes from the environment ([`Containerd::endpoint`]); the benchmarks
/// start a containerd of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub address: PathBuf,
    pub namespace: String,
}

/// The containerd under test and where its files are, seen from this process.
///
/// containerd runs in its own mount namespace, so its paths are reached through
/// `/proc/<pid>/root` ([`Containerd::path`]).
#[derive(Debug)]
pub struct Containerd {
    /// gRPC socket (`CONTAINERD_ADDRESS`).
    pub address: PathBuf,
    /// containerd namespace the tests use (`CONTAINERD_NAMESPACE`).
    pub namespace: String,
    /// Host pid of containerd (`WASM_SHIMS_CONTAINERD_PID`, then the one [`Containerd::restart`]
    /// started).
    pid: AtomicU32,
    /// containerd's `state` directory, as containerd sees it.
    pub state_dir: PathBuf,
}

/// The containerd from the environment; panics with instructions when it is not there,
/// so that a test run without it fails instead of passing vacuously.
pub fn containerd() -> &'static Containerd {
    static CONTAINERD: OnceLock<Result<Containerd, String>> = OnceLock::new();
    match CONTAINERD.get_or_init(|| Containerd::from_env().map_err(|e| format!("{e:#}"))) {
        Ok(containerd) => containerd,
        Err(message) => panic!("{message}"),
    }
}

/// Runs `scripts/containerd.sh VERB` with `env` added to its environment (e.g. its own
/// `WASM_SHIMS_STATE`); fails with the script's stderr unless it succeeds. Returns its stdout.
pub fn containerd_script(verb: &str, env: &[(&str, &Path)]) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/containerd.sh");
    let output = std::process::Command::new(&script)
        .arg(verb)
        .envs(env.iter().copied())
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

fn is_containerd(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "containerd")
}

/// The pid of the containerd that `scripts/containerd.sh env` (with `env` added to its
/// environment) reports.
pub fn pid_from_script(env: &[(&str, &Path)]) -> Result<u32> {
    let text = containerd_script("env", env)?;
    text.lines()
        .find_map(|line| line.strip_prefix("export WASM_SHIMS_CONTAINERD_PID="))
        .and_then(|pid| pid.trim().parse().ok())
        .with_context(|| format!("scripts/containerd.sh env printed no containerd pid: {text}"))
}

fn required_var(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => bail!("{name} is not set: {HOW_TO_RUN}"),
    }
}

impl Containerd {
    fn from_env() -> Result<Self> {
        let address = PathBuf::from(required_var("CONTAINERD_ADDRESS")?);
        let namespace = required_var("CONTAINERD_NAMESPACE")?;
        let pid_text = required_var("WASM_SHIMS_CONTAINERD_PID")?;
        let pid: u32 = pid_text
            .parse()
            .with_context(|| format!("WASM_SHIMS_CONTAINERD_PID={pid_text:?} is not a pid"))?;
        // A test that restarts containerd (tests/restart.rs) leaves the variable stale for
        // the test binaries that run after it: ask the script for the pid of now.
        let pid = if is_containerd(pid) {
            pid
        } else {
            match pid_from_script(&[]) {
                Ok(now) if is_containerd(now) => now,
                _ => bail!(
                    "WASM_SHIMS_CONTAINERD_PID={pid} is not a running containerd: {HOW_TO_RUN}"
                ),
            }
        };
        if !address.exists() {
            bail!(
                "CONTAINERD_ADDRESS={} does not exist: {HOW_TO_RUN}",
                address.display()
            );
        }
        let state_dir = state_dir_of(pid)?;
        Ok(Self {
            address,
            namespace,
            pid: AtomicU32::new(pid),
            state_dir,
        })
    }

    /// The socket and namespace of the suite, for [`crate::api::Api`] and [`crate::ctr::Ctr`].
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
        }
    }

    /// Host pid of the containerd running now.
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// Restarts containerd alone (`scripts/containerd.sh restart`: shims and containers keep
    /// running) and follows it to its new pid.
    pub fn restart(&self) -> Result<()> {
        containerd_script("restart", &[])?;
        self.pid.store(pid_from_script(&[])?, Ordering::SeqCst);
        Ok(())
    }

    /// `path` as containerd sees it (inside its mount namespace), reachable from here.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let relative = path.as_ref().strip_prefix("/").unwrap_or(path.as_ref());
        PathBuf::from(format!("/proc/{}/root", self.pid())).join(relative)
    }

    /// The bundle directory containerd makes for a task: `<state>/io.containerd.runtime.v2.task/<ns>/<id>`.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.bundle_dir_in(&self.namespace, id)
    }

    /// [`Containerd::bundle_dir`] for a task in containerd namespace `namespace`.
    pub fn bundle_dir_in(&self, namespace: &str, id: &str) -> PathBuf {
        self.path(
            self.state_dir
                .join("io.containerd.runtime.v2.task")
                .join(namespace)
                .join(id),
        )
    }

    /// containerd's log file (its stderr, where shim logs are copied), if stderr is a file.
    pub fn log_file(&self) -> Result<PathBuf> {
        let target = std::fs::read_link(format!("/proc/{}/fd/2", self.pid()))
            .with_context(|| format!("cannot read containerd's stderr (pid {})", self.pid()))?;
        if !target.is_absolute() {
            bail!(
                "containerd's stderr is {}, not a file: cannot read shim logs",
                target.display()
            );
        }
        Ok(self.path(target))
    }

    /// The directories where containerd looks for shim binaries: its `PATH`, then the
    /// directory of its own executable (containerd 1.6 looks there too).
    pub fn shim_search_path(&self) -> Result<Vec<PathBuf>> {
        let environ =
            std::fs::read(format!("/proc/{}/environ", self.pid())).with_context(|| {
                format!("cannot read containerd's environment (pid {})", self.pid())
            })?;
        let mut dirs: Vec<PathBuf> = environ
            .split(|b| *b == 0)
            .filter_map(|var| var.strip_prefix(b"PATH="))
            .flat_map(|path| {
                String::from_utf8_lossy(path)
                    .split(':')
                    .map(PathBuf::from)
                    .collect::<Vec<_>>()
            })
            .filter(|dir| dir.is_absolute())
            .collect();
        if let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", self.pid()))
            && let Some(dir) = exe.parent()
        {
            dirs.push(dir.to_path_buf());
        }
        Ok(dirs)
    }
}

/// containerd's state dir: `--state`, else `state` in the `--config` file, else the default.
fn state_dir_of(pid: u32) -> Result<PathBuf> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .with_context(|| format!("cannot read containerd's command line (pid {pid})"))?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    if let Some(state) = flag_value(&args, &["--state"]) {
        return Ok(PathBuf::from(state));
    }
    let Some(config) = flag_value(&args, &["--config", "-c"]) else {
        return Ok(PathBuf::from("/run/containerd"));
    };
    // A relative config path is relative to containerd's working directory.
    let config = PathBuf::from(format!("/proc/{pid}/cwd")).join(config);
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("cannot read containerd's config {}", config.display()))?;
    Ok(top_level_string(&text, "state")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/containerd")))
}

fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, arg)| {
        names.iter().find_map(|name| {
            if arg == name {
                args.get(i + 1).cloned()
            } else {
                arg.strip_prefix(&format!("{name}=")).map(str::to_owned)
            }
        })
    })
}

/// A top-level `key = "value"` of a TOML file (before its first table); enough for
/// containerd's `state`, which scripts/containerd.sh writes as a basic string.
fn top_level_string(toml: &str, key: &str) -> Option<String> {
    toml.lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim() == key)
        .and_then(|(_, value)| {
            let value = value.trim();
            value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(|v| v.replace("\\\"", "\"").replace("\\\\", "\\"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_top_level_state_only() {
        let toml = "version = 2\nroot = \"/r\"\nstate = \"/s/state\"\n[grpc]\n  state = \"/no\"\n";
        assert_eq!(top_level_string(toml, "state").as_deref(), Some("/s/state"));
        assert_eq!(top_level_string("[grpc]\nstate = \"/no\"\n", "state"), None);
    }

    #[test]
    fn finds_flags_in_both_spellings() {
        let args: Vec<String> = ["containerd", "--config", "/c.toml"]
            .map(String::from)
            .into();
        assert_eq!(
            flag_value(&args, &["--config", "-c"]).as_deref(),
            Some("/c.toml")
        );
        let args: Vec<String> = ["containerd", "--state=/s"].map(String::from).into();
        assert_eq!(flag_value(&args, &["--state"]).as_deref(), Some("/s"));
    }
}
