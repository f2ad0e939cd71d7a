//! containerd runs the shim binary's `start` for every container. For a container of a pod
//! whose shim is already serving, `start` answers with that shim's address and starts no
//! process: a pod's later containers cost no shim spawn (runc's shim does the same).
//!
//! Our shims only: the test runs `start` in containerd's mount namespace but not in its pid
//! namespace, so that a spawned shim would be re-parented to the test, and runc's shim needs
//! `/proc/self/exe`, which resolves only inside that pid namespace.
//!
//! Its own test binary: it makes the test process a child subreaper, which must not change
//! what other tests see of their processes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, ensure};
use shim_conformance::container::SANDBOX_ID_ANNOTATION;
use shim_conformance::environment::containerd;
use shim_conformance::leftovers::{describe_process, shim_socket};
use shim_conformance::procfs;
use shim_conformance::target::{check_targets, wasm_shim_targets};

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn start_for_a_pod_member_spawns_no_shim() {
    // A shim that `start` spawns outlives it and is re-parented here, where it can be seen
    // (as a zombie once it exits).
    // SAFETY: prctl with integer arguments does not touch memory.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0, "make the test process a child subreaper");

    check_targets(&wasm_shim_targets(), |target, test| {
        let sandbox = target.sleeping_sandbox(test)?;
        let member = target.pod_member(test, sandbox.id());
        let bundle = Bundle::for_pod_member(member.id(), sandbox.id())?;
        let binary = target.runtime.locate()?;
        let address = &containerd().address;
        // One `start` at a time: the only shim processes that are children of the test are
        // then the one being run and what it spawned.
        let _one_start = ONE_START.lock().unwrap_or_else(|e| e.into_inner());
        // containerd's `start`: in containerd's mount namespace (where /run/containerd/s is),
        // in the bundle, with containerd's addresses.
        let out = Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", containerd().pid()))
            .arg(format!("--wd={}", bundle.dir.display()))
            .arg("--")
            .arg(&binary)
            .args(["-namespace", &containerd().namespace, "-id", &bundle.id])
            .arg("-address")
            .arg(address)
            .arg("start")
            .env("TTRPC_ADDRESS", format!("{}.ttrpc", address.display()))
            .output()
            .with_context(|| format!("run {} start", binary.display()))?;
        let spawned = reap_shims_reparented_here();
        ensure!(
            out.status.success(),
            "`{} start` for {} failed ({}): {} (a `start` that spawns a shim fails here: \
             outside containerd's pid namespace, /proc/self/exe does not resolve)",
            binary.display(),
            bundle.id,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let answered = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let pod_socket = format!("unix://{}", shim_socket(sandbox.id()).display());
        ensure!(
            answered == pod_socket,
            "`start` for {} in pod {} answered {answered:?}, not the pod shim's {pod_socket}",
            bundle.id,
            sandbox.id()
        );
        // The sandbox is removed when `sandbox` is dropped.
        ensure!(
            spawned.is_empty(),
            "`start` for {} in pod {} (whose shim serves) spawned shim processes: {spawned:?}",
            bundle.id,
            sandbox.id()
        );
        Ok(())
    });
}

static ONE_START: Mutex<()> = Mutex::new(());

/// A bundle as containerd writes one for a container of a pod (only what `start` reads).
struct Bundle {
    id: String,
    dir: PathBuf,
}

impl Bundle {
    fn for_pod_member(id: &str, sandbox_id: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("shim-start-{id}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "annotations": { SANDBOX_ID_ANNOTATION: sandbox_id },
        });
        let config = dir.join("config.json");
        std::fs::write(&config, spec.to_string())
            .with_context(|| format!("write {}", config.display()))?;
        Ok(Self {
            id: id.to_owned(),
            dir,
        })
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shim processes (live or exited) that became children of this process, described;
/// each is stopped and reaped.
fn reap_shims_reparented_here() -> Vec<String> {
    let me = std::process::id();
    procfs::pids()
        .into_iter()
        .filter(|pid| procfs::ancestors(*pid).first() == Some(&me))
        .filter(|pid| procfs::comm(*pid).starts_with("containerd-shim"))
        .map(|pid| {
            let described = describe_process("shim process", pid);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
            described
        })
        .collect()
}
