//! What a container may ask for to debug its module, by annotation: a core dump when it traps
//! (`coredump`) and a guest profile of its run (`profile`). Both are written into directories
//! of the container (volumes), by the container's own process, as its user.

pub mod coredump;
pub mod profile;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::anyhow;
use containerd_shim_wasm::WasiContext;
use wasmtime::{GuestProfiler, Store};

use profile::Profiling;

/// The profiler's place in a store's data.
pub type ProfilerSlot<T> = fn(&mut T) -> &mut Option<GuestProfiler>;

/// A run of a module or command with what its container asked for to debug it.
pub struct DebuggedRun<T> {
    profiling: Option<Profiling>,
    slot: ProfilerSlot<T>,
}

impl<T: 'static> DebuggedRun<T> {
    /// Before the run: checks the core dump annotations (a bad one fails the run now, not at
    /// a trap) and starts the profiler (`profiler` makes it, for the sampling interval) when
    /// the container asked for a profile.
    pub fn start(
        store: &mut Store<T>,
        ctx: &WasiContext,
        slot: ProfilerSlot<T>,
        profiler: impl FnOnce(std::time::Duration) -> anyhow::Result<GuestProfiler>,
    ) -> anyhow::Result<Self> {
        coredump::CoreDumps::from_annotations(&ctx.annotations)?;
        Ok(Self {
            profiling: Profiling::start(store, ctx, slot, profiler)?,
            slot,
        })
    }

    /// After the run that ended with `result`: the core dump of a trap and the profile
    /// written when asked for; the status, or the error as it reads without the core dump
    /// wasmtime attached.
    pub fn finish(
        self,
        store: &mut Store<T>,
        ctx: &WasiContext,
        result: anyhow::Result<i32>,
    ) -> anyhow::Result<i32> {
        let result = result.map_err(|e| {
            coredump::write_if_asked(&e, &mut *store, ctx);
            anyhow!(coredump::describe(&e))
        });
        match self.profiling {
            Some(profiling) => profiling.finish(store, self.slot, ctx, result),
            None => result,
        }
    }
}

/// `<container>.<pid>.<seconds since the epoch>.<n>.<extension>`: unique among the files of
/// every container writing into one volume.
fn file_name(container: &str, extension: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{container}.{}.{seconds}.{n}.{extension}",
        std::process::id()
    )
}

/// Says where `what` (a core dump, a profile) of `ctx`'s module went, or why it was not
/// written, on the container's stderr and in the shim log.
fn report(ctx: &WasiContext, what: &str, written: &anyhow::Result<PathBuf>) {
    let module = &ctx.args[0];
    let container = ctx.container.as_str();
    match written {
        Ok(path) => {
            eprintln!("{module}: {what} written to {}", path.display());
            log::info!(id = container; "container {container}: {what} of {module} written to {}", path.display());
        }
        Err(e) => {
            eprintln!("{module}: {what} not written: {e:#}");
            log::warn!(id = container; "container {container}: {what} of {module} not written: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use containerd_shim_wasm::{Engine, EngineConfig};

    use super::*;
    use crate::engine::WasmtimeEngine;

    fn context(annotations: &[(&str, &Path)]) -> WasiContext {
        WasiContext {
            args: vec!["m.wasm".into()],
            env: vec![],
            preopens: vec![],
            entry: "_start".into(),
            network: false,
            container: "debugged".into(),
            settings: Default::default(),
            annotations: annotations
                .iter()
                .map(|(name, dir)| (name.to_string(), dir.display().to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn files(dir: &Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    }

    /// A module with a name section whose `_start` calls `$crash`, which traps.
    const TRAPS: &str = r#"(module $m (memory (export "memory") 1)
        (data (i32.const 16) "marker")
        (func $crash unreachable)
        (func (export "_start") (call $crash)))"#;

    #[test]
    fn a_trap_writes_a_core_dump_when_asked_and_reads_without_it() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let module = engine
            .compile(&wat::parse_str(TRAPS).unwrap(), "_start")
            .unwrap();

        let unasked = engine.run(&module, &context(&[])).unwrap_err().to_string();
        assert!(unasked.contains("unreachable"), "{unasked}");
        assert!(
            unasked.contains("crash"),
            "the backtrace names the frame: {unasked}"
        );
        assert!(!unasked.contains("coredump"), "{unasked}");

        let dumps = tempfile::tempdir().unwrap();
        let ctx = context(&[(coredump::DIR_ANNOTATION, dumps.path())]);
        let err = engine.run(&module, &ctx).unwrap_err().to_string();
        assert_eq!(err, unasked);
        let written = files(dumps.path());
        assert_eq!(written.len(), 1, "{written:?}");
        let name = written[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            name.starts_with("debugged.") && name.ends_with(".coredump"),
            "{name}"
        );
        let bytes = std::fs::read(&written[0]).unwrap();
        let mut customs = Vec::new();
        let mut has_memory_data = false;
        for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
            match payload.unwrap() {
                wasmparser::Payload::CustomSection(section) => {
                    customs.push(section.name().to_string())
                }
                wasmparser::Payload::DataSection(_) => has_memory_data = true,
                _ => {}
            }
        }
        for section in ["core", "coremodules", "coreinstances", "corestack"] {
            assert!(
                customs.iter().any(|c| c == section),
                "{section} in {customs:?}"
            );
        }
        assert!(has_memory_data, "the memory is in the dump");
        assert!(bytes.windows(6).any(|w| w == b"marker"));
    }

    #[test]
    fn a_bad_dump_bound_fails_the_run_before_it_starts() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let module = engine
            .compile(&wat::parse_str(TRAPS).unwrap(), "_start")
            .unwrap();
        let dumps = tempfile::tempdir().unwrap();
        let mut ctx = context(&[(coredump::DIR_ANNOTATION, dumps.path())]);
        ctx.annotations
            .insert(coredump::MAX_SIZE_ANNOTATION.into(), "lots".into());
        let err = format!("{:#}", engine.run(&module, &ctx).unwrap_err());
        assert!(err.contains(coredump::MAX_SIZE_ANNOTATION), "{err}");
        assert!(
            !err.contains("unreachable"),
            "refused before the module ran: {err}"
        );
    }

    #[test]
    fn a_dump_over_the_bound_is_not_written() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        let module = engine
            .compile(&wat::parse_str(TRAPS).unwrap(), "_start")
            .unwrap();
        let dumps = tempfile::tempdir().unwrap();
        let mut ctx = context(&[(coredump::DIR_ANNOTATION, dumps.path())]);
        ctx.annotations
            .insert(coredump::MAX_SIZE_ANNOTATION.into(), "1K".into());
        engine.run(&module, &ctx).unwrap_err();
        assert!(files(dumps.path()).is_empty());
    }

    #[test]
    fn a_profile_is_written_when_asked() {
        let engine = WasmtimeEngine::new(&EngineConfig::default()).unwrap();
        // Spins for about 30M iterations in `$spin`, then returns.
        let spins = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                (func $spin (local $i i32)
                  (loop $again
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br_if $again (i32.lt_u (local.get $i) (i32.const 30000000)))))
                (func (export "_start") (call $spin)))"#,
        )
        .unwrap();
        let module = engine.compile(&spins, "_start").unwrap();
        let profiles = tempfile::tempdir().unwrap();
        let ctx = context(&[(profile::DIR_ANNOTATION, profiles.path())]);
        assert_eq!(engine.run(&module, &ctx).unwrap(), 0);
        let written = files(profiles.path());
        assert_eq!(written.len(), 1, "{written:?}");
        let profile: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&written[0]).unwrap()).unwrap();
        assert_eq!(profile["meta"]["product"], "m.wasm", "{profile:#}");
        let thread = &profile["threads"][0];
        assert!(
            thread["samples"]["length"].as_u64().unwrap() > 0,
            "sampled: {thread:#}"
        );
    }
}
