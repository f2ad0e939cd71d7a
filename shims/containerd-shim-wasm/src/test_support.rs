//! What the unit tests share: the OCI spec they start from (a process and a rootfs, as
//! containerd writes them), and a way to run a test in a process of its own.

use oci_spec::runtime::{ProcessBuilder, RootBuilder, Spec, SpecBuilder};

/// A spec whose process runs `args` with `env` in `cwd`, on a rootfs `rootfs` (read-only when
/// `read_only`).
pub fn spec(args: &[&str], env: &[&str], cwd: &str, read_only: bool) -> Spec {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let process = ProcessBuilder::default()
        .args(strings(args))
        .env(strings(env))
        .cwd(cwd)
        .build()
        .unwrap();
    let root = RootBuilder::default()
        .path("rootfs")
        .readonly(read_only)
        .build()
        .unwrap();
    SpecBuilder::default()
        .process(process)
        .root(root)
        .build()
        .unwrap()
}

/// `spec` with one more annotation (the others kept).
pub fn annotated(mut spec: Spec, key: &str, value: &str) -> Spec {
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(key.to_string(), value.to_string());
    spec.set_annotations(Some(annotations));
    spec
}

/// Set in a copy of the test binary to the name of the one test it runs alone.
const ALONE_ENV: &str = "WASM_SHIM_TEST_ALONE";

/// Runs `checks` in a copy of this test binary that runs only the test `test` of the module
/// `module` (`module_path!()`), and fails if they fail there. For tests with a [reaper]: it
/// reaps every child of its process, and in the test binary it would also reap the children of
/// tests running beside it (whose own wait then fails with ECHILD).
///
/// [reaper]: crate::shim::reaper::Reaper
pub fn alone(module: &str, test: &str, checks: impl FnOnce()) {
    let module = module.split_once("::").map_or("", |(_, below)| below);
    let name = format!("{module}::{test}");
    if std::env::var(ALONE_ENV).as_deref() == Ok(name.as_str()) {
        return checks();
    }
    let copy = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "--nocapture", &name])
        .env(ALONE_ENV, &name)
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&copy.stdout);
    assert!(
        copy.status.success() && output.contains("1 passed"),
        "{name} in a copy of the test binary: {}\n{output}\n{}",
        copy.status,
        String::from_utf8_lossy(&copy.stderr)
    );
}
