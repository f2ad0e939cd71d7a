//! Configuration (docs/configuration.md): the runtime options, here in the file
//! `ctr run --runtime-config-path` names (as CRI's `ConfigPath` does; the CRI suite checks the
//! `options` table of containerd's config), and the per-container annotations change what a
//! module may do on every engine that honours them; a bad value, or a setting an engine
//! cannot honour, fails at create naming it. The HTTP and socket settings of the wasmtime
//! shim are in tests/http.rs.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use shim_conformance::container::Container;
use shim_conformance::containerd_log::LogTail;
use shim_conformance::ctr::CmdOutput;
use shim_conformance::expect::{EXIT_TRAP, failed_at_create};
use shim_conformance::target::{Target, check_targets, wasm_targets};

const DEADLINE: &str = "io.containerd.wasm.deadline";
const MAX_MEMORY: &str = "io.containerd.wasm.max-memory";
const MAX_TABLE_ELEMENTS: &str = "io.containerd.wasm.max-table-elements";
/// `timeout(1)`'s status, which a command stopped by its deadline ends with.
const DEADLINE_EXIT: i32 = 124;

/// A runtime options file with `toml` in a directory that lives as long as the value.
struct OptionsFile {
    dir: tempfile::TempDir,
}

impl OptionsFile {
    fn new(toml: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("options.toml"), toml)?;
        Ok(Self { dir })
    }

    fn path(&self) -> String {
        self.dir.path().join("options.toml").display().to_string()
    }

    fn container(&self, target: &Target, test: &str) -> Container {
        target
            .container(test)
            .flag("--runtime-config-path", &self.path())
    }
}

fn stopped_by_deadline(out: &CmdOutput, deadline: &str) -> Result<()> {
    out.expect_code(DEADLINE_EXIT)?;
    ensure!(
        out.stdout == "looping\n"
            && out
                .stderr
                .contains(&format!("deadline of {deadline} exceeded")),
        "the deadline's stop is not reported: {}",
        out.describe()
    );
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_deadline_stops_a_looping_module_with_124() {
    check_targets(&wasm_targets(), |target, test| {
        let out = target
            .container(test)
            .annotation(DEADLINE, "1s")
            .run(&target.args(&["loop"]))?;
        stopped_by_deadline(&out, "1s")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_memory_cap_fails_growth_inside_the_sandbox() {
    check_targets(&wasm_targets(), |target, test| {
        let capped = target.container(test).annotation(MAX_MEMORY, "32M");
        let out = capped.run(&target.args(&["grow", "64"]))?;
        if target.runtime.name == "wasmedge" {
            return failed_at_create(&out, &[MAX_MEMORY, "wasmedge"], &["cannot enforce"]);
        }
        // The module's allocator sees the failed growth and aborts (a trap), not an OOM kill.
        out.expect_code(EXIT_TRAP)?;
        ensure!(
            out.stdout == "growing 64 MiB\n" && out.stderr.contains("memory allocation"),
            "the failed allocation is not reported: {}",
            out.describe()
        );
        target
            .container(&format!("{test}-within"))
            .annotation(MAX_MEMORY, "32M")
            .run(&target.args(&["grow", "16"]))?
            .expect(0, "growing 16 MiB\ngrew 16 MiB\n")
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn runtime_options_give_the_defaults_of_annotations() {
    check_targets(&wasm_targets(), |target, test| {
        let options = OptionsFile::new("Deadline = \"1s\"\n")?;
        let out = options
            .container(target, test)
            .run(&target.args(&["loop"]))?;
        stopped_by_deadline(&out, "1s")?;
        // The annotation wins over the option's default.
        let out = options
            .container(target, &format!("{test}-annotated"))
            .annotation(DEADLINE, "2s")
            .run(&target.args(&["loop"]))?;
        stopped_by_deadline(&out, "2s")
    });
}

/// wasmtime switches proposals off (Rust's wasm32 targets emit bulk memory instructions, so
/// the demo no longer validates); WAMR's are fixed when it is built, so it refuses the option.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_proposal_switched_off_refuses_a_module_that_uses_it() {
    check_targets(&wasm_targets(), |target, test| {
        let options = OptionsFile::new("WasmFeatures = { bulk_memory = false }\n")?;
        let out = options
            .container(target, test)
            .run(&target.args(&["echo", "hi"]))?;
        match target.runtime.name {
            "wasmtime" => failed_at_create(&out, &["wasi-demo-app.wasm"], &["bulk memory"]),
            engine => failed_at_create(&out, &["WasmFeatures", engine], &["not supported"]),
        }
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn bad_settings_fail_at_create_naming_them() {
    check_targets(&wasm_targets(), |target, test| {
        let out = target
            .container(&format!("{test}-memory"))
            .annotation(MAX_MEMORY, "lots")
            .run(&target.args(&["echo", "hi"]))?;
        failed_at_create(&out, &[MAX_MEMORY, "lots"], &["not a size"])
            .context("a bad annotation")?;

        let options = OptionsFile::new("Deadline = \"1s\"\nBogus = 1\n")?;
        let out = options
            .container(target, &format!("{test}-option"))
            .run(&target.args(&["echo", "hi"]))?;
        failed_at_create(&out, &["Bogus", "runtime options"], &["unknown field"])
            .context("an unknown runtime option")?;
        Ok(())
    });
}

/// A table cap below a table's initial size stops the module when it is instantiated (at
/// start, 134, the reason in the shim log); a cap above it lets the module run. The demo's
/// function table has more than 100 elements (147 when this was written).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_table_cap_stops_a_module_whose_table_exceeds_it() {
    check_targets(&wasm_targets(), |target, test| {
        let log = LogTail::now()?;
        let capped = target.container(test).annotation(MAX_TABLE_ELEMENTS, "100");
        let out = capped.run(&target.args(&["echo", "hi"]))?;
        if target.runtime.name != "wasmtime" {
            return failed_at_create(
                &out,
                &[MAX_TABLE_ELEMENTS, target.runtime.name],
                &["cannot enforce"],
            );
        }
        out.expect_code(EXIT_TRAP)?;
        let id = capped.id();
        log.wait_for(
            &format!("record with id=\"{id}\" about the table limit"),
            |record| {
                record.field("id") == Some(id)
                    && record
                        .message()
                        .is_some_and(|m| m.contains("exceeds table limits"))
            },
            // containerd copies the shim log into its own; a loaded machine can lag seconds.
            Duration::from_secs(10),
        )?;
        target
            .container(&format!("{test}-within"))
            .annotation(MAX_TABLE_ELEMENTS, "1000")
            .run(&target.args(&["echo", "hi"]))?
            .expect(0, "hi\n")
    });
}
