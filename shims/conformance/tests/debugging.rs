//! What a developer gets to debug a module on the wasmtime shim (docs/debugging.md): a core
//! dump of a trap and a guest profile, each written into a volume the container names by
//! annotation, with a line on the container's stderr saying where.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shim_conformance::component_server::wasmtime;
use shim_conformance::container::Container;
use shim_conformance::expect::{EXIT_SIGTERM, EXIT_TRAP};
use shim_conformance::images::WASI_DEMO_APP;

/// A host directory mounted read-write at `at` in `container`.
fn with_volume(container: Container, volume: &Path, at: &str) -> Container {
    container.flag(
        "--mount",
        &format!(
            "type=bind,src={},dst={at},options=rbind:rw",
            volume.display()
        ),
    )
}

fn volume() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("debugging-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))?)
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        found.push(entry?.path());
    }
    Ok(found)
}

/// The names of the custom sections of a Wasm binary.
fn custom_sections(bytes: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let wasmparser::Payload::CustomSection(section) = payload? {
            names.push(section.name().to_string());
        }
    }
    Ok(names)
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_trap_writes_a_core_dump_into_the_volume_the_container_names() -> Result<()> {
    let dumps = volume()?;
    let container = Container::new("coredump", wasmtime(), &WASI_DEMO_APP)
        .annotation("io.containerd.wasm.coredump-dir", "/dumps");
    let out =
        with_volume(container, dumps.path(), "/dumps").run(&["/wasi-demo-app.wasm", "trap"])?;
    let written = files(dumps.path())?;
    if out.code != Some(EXIT_TRAP)
        || !out.stderr.contains("wasi-demo-app/src/main.rs:31")
        || !out.stderr.contains("core dump written to /dumps/")
        || out.stderr.contains("wasm coredump generated")
        || written.len() != 1
    {
        bail!(
            "expected {EXIT_TRAP}, the backtrace and where the dump went on stderr, one file in \
             the volume; got {written:?} and {}",
            out.describe()
        );
    }
    let bytes = std::fs::read(&written[0])?;
    let sections = custom_sections(&bytes)
        .with_context(|| format!("{} is not a Wasm binary", written[0].display()))?;
    for section in ["core", "coremodules", "coreinstances", "corestack"] {
        if !sections.iter().any(|s| s == section) {
            bail!("no `{section}` section in the core dump: {sections:?}");
        }
    }
    // The dump holds the module's memory (its non-zero parts), where the demo's strings are.
    if !bytes.windows(b"looping".len()).any(|w| w == b"looping") {
        bail!(
            "the demo's memory is not in the core dump ({} bytes)",
            bytes.len()
        );
    }

    // Without the annotation, no dump, even with the volume there.
    let container = Container::new("no-coredump", wasmtime(), &WASI_DEMO_APP);
    let out =
        with_volume(container, dumps.path(), "/dumps").run(&["/wasi-demo-app.wasm", "trap"])?;
    if out.code != Some(EXIT_TRAP)
        || out.stderr.contains("core dump")
        || files(dumps.path())?.len() != 1
    {
        bail!("a container that asked for no dump: {}", out.describe());
    }
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_stopped_module_writes_its_guest_profile() -> Result<()> {
    let profiles = volume()?;
    let container = Container::new("profile", wasmtime(), &WASI_DEMO_APP)
        .annotation("io.containerd.wasm.profile-dir", "/profiles");
    let container = with_volume(container, profiles.path(), "/profiles");
    let mut running = container.spawn(&["/wasi-demo-app.wasm", "loop"])?;
    running.wait_for_stdout("looping", Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(500));
    container.kill("SIGTERM")?;
    let out = running.wait(Duration::from_secs(10))?;
    let written = files(profiles.path())?;
    if out.code != Some(EXIT_SIGTERM)
        || !out.stderr.contains("profile written to /profiles/")
        || written.len() != 1
    {
        bail!(
            "expected {EXIT_SIGTERM}, where the profile went on stderr and one file in the \
             volume; got {written:?} and {}",
            out.describe()
        );
    }
    let text = std::fs::read_to_string(&written[0])?;
    let profile: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", written[0].display()))?;
    let samples = profile["threads"][0]["samples"]["length"]
        .as_u64()
        .unwrap_or_default();
    // Half a second of spinning at a sample each 10 ms, in the demo's functions (named from
    // its name section; the spinning loop may be inlined into its caller).
    if samples < 10 || !text.contains("demo_commands") {
        bail!(
            "{samples} samples, the demo's functions named: {}",
            text.contains("demo_commands")
        );
    }
    Ok(())
}
