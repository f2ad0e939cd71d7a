//! What a process of the container will run, prepared once in the helper: `args[0]` resolved
//! in the rootfs and, for a module, the engine, the compiled module and the [`WasiContext`]
//! the init process hands the engine as it is (it does not read the spec again).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use log::debug;
use nix::fcntl::OFlag;
use oci_spec::runtime::Spec;

use super::workload;
use crate::config::ContainerSettings;
use crate::engine::{ANNOTATION_PREFIX, Engine, NETWORK_ANNOTATION, WasiContext, is_component};
use crate::entrypoint::Entrypoint;
use crate::init::executor::{Prepared, ShimExecutor};
use crate::request::Kind;

/// What the process will run: args[0] resolved in the rootfs and, for a module, compiled (or
/// loaded from the cache) and linked, so that every error a user can fix comes now. A
/// container's init process (`init`) of an engine that runs applications runs the application
/// instead (`Engine::APPLICATION_FILE`); an exec process always runs what its args name.
pub fn prepare<E: Engine>(
    spec: &Spec,
    rootfs: &Path,
    id: &str,
    engine: Option<E>,
    init: bool,
) -> anyhow::Result<(workload::Workload, ShimExecutor<E>)> {
    let began = Instant::now();
    let application = E::APPLICATION_FILE.filter(|_| init);
    let workload = match application {
        Some(file) => {
            let files: Vec<&str> = [Some(file), E::APPLICATION_FALLBACK]
                .into_iter()
                .flatten()
                .collect();
            workload::resolve_application(spec, rootfs, &files)?
        }
        None => workload::resolve(spec, rootfs)?,
    };
    if workload.kind == Kind::Wasm {
        super::preopens::check(spec, rootfs, E::READ_ONLY_PREOPENS)?;
    }
    let resolved = Instant::now();
    let prepared = match workload.kind {
        Kind::Native => Prepared::Native,
        Kind::Wasm => prepare_wasm(spec, rootfs, &workload, id, engine, application.is_some())?,
    };
    super::phases::record("resolve", began, resolved);
    super::phases::record("module load", resolved, Instant::now());
    debug!(
        id;
        "workload of {id}: resolve {:?}, module load {:?}",
        resolved - began,
        resolved.elapsed()
    );
    let executor = ShimExecutor {
        container_id: id.to_string(),
        prepared,
        exec_filter: None,
    };
    Ok((workload, executor))
}

fn prepare_wasm<E: Engine>(
    spec: &Spec,
    rootfs: &Path,
    workload: &workload::Workload,
    container: &str,
    engine: Option<E>,
    application: bool,
) -> anyhow::Result<Prepared<E>> {
    let path = &workload.entrypoint.path;
    let engine = match engine {
        Some(engine) => engine,
        None => E::new(&crate::config::for_process().engine_config()?)
            .with_context(|| format!("start the {} engine", E::NAME))?,
    };
    let ctx = wasi_context(spec, &workload.entrypoint, container)?;
    super::capabilities::refuse_what_the_engine_cannot_enforce::<E>(&ctx.settings)?;
    let before = open_descriptors()?;
    let module = if application {
        engine
            .load_application(rootfs, &workload.host_path, container)
            .with_context(|| format!("{path}: the {} engine cannot run it", E::NAME))?
    } else {
        compile_module(&engine, workload, container, &ctx)?
    };
    let engine_fds = open_descriptors()?
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    Ok(Prepared::Wasm {
        engine,
        module: Arc::new(module),
        ctx: Box::new(ctx),
        engine_fds,
    })
}

/// The module args[0] names, checked to be something `engine` runs, then compiled (or loaded
/// from the node's cache) and linked.
fn compile_module<E: Engine>(
    engine: &E,
    workload: &workload::Workload,
    container: &str,
    ctx: &WasiContext,
) -> anyhow::Result<E::Module> {
    let path = &workload.entrypoint.path;
    let bytes = super::module_size::read_module(&workload.host_path, path)?;
    if !engine.can_run(&bytes) {
        bail!(
            "{path}: the {} engine cannot run this kind of WebAssembly binary",
            E::NAME
        );
    }
    if is_component(&bytes) && !engine.runs_components() {
        bail!(
            "{path}: a WebAssembly component (a WASI 0.2 or 0.3 world), which the {} engine \
             does not run: it runs core modules (WASI preview 1); run components with the \
             wasmtime shim (runtime io.containerd.wasmtime.v1)",
            E::NAME
        );
    }
    super::capabilities::refuse_unconfined_sockets::<E>(&bytes, ctx)
        .with_context(|| format!("{path}: the {} engine cannot run it", E::NAME))?;
    // Not "invalid" whatever happened: a valid binary may need what this engine lacks, and
    // the engine's error says which.
    super::cache::compile(engine, &bytes, &workload.entrypoint.func, container)
        .with_context(|| format!("{path}: the {} engine cannot run it", E::NAME))
}

/// The descriptors open in this process (from `/proc/self/fd`, less the one reading it).
fn open_descriptors() -> anyhow::Result<Vec<RawFd>> {
    const DIR: &str = "/proc/self/fd";
    let mut dir = nix::dir::Dir::open(
        DIR,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("list the open descriptors in {DIR}"))?;
    let own = dir.as_raw_fd();
    Ok(dir
        .iter()
        .filter_map(|entry| entry.ok()?.file_name().to_str().ok()?.parse().ok())
        .filter(|fd| *fd != own)
        .collect())
}

/// The module's view of the container: args, env, and the preopened directories (the rootfs
/// and the working directory as `.`, unless narrowed: see [`super::preopens`]), made here
/// once and handed to the init process, which runs the module with it as it is.
fn wasi_context(
    spec: &Spec,
    entrypoint: &Entrypoint,
    container: &str,
) -> anyhow::Result<WasiContext> {
    let process = spec.process().as_ref();
    let mut args: Vec<String> = process.and_then(|p| p.args().clone()).unwrap_or_default();
    if let Some(arg0) = args.first_mut() {
        arg0.clone_from(&entrypoint.path);
    }
    let env = process
        .and_then(|p| p.env().as_ref())
        .map(|env| {
            env.iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.clone(), String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    let preopens = super::preopens::for_spec(spec)?;
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .iter()
        .flatten()
        .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let settings = ContainerSettings::from_annotations(&annotations, crate::config::for_process())?;
    let network = annotations
        .get(NETWORK_ANNOTATION)
        .is_some_and(|value| value == "allow")
        || settings.allowed_outbound_hosts.is_some();
    Ok(WasiContext {
        args,
        env,
        preopens,
        entry: entrypoint.func.clone(),
        network,
        container: container.to_string(),
        settings,
        annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{annotated, spec};
    use std::path::PathBuf;

    #[test]
    fn context_follows_the_spec() {
        let spec = spec(
            &["app.wasm#greet", "a b"],
            &["A=1", "B=x=y", "EMPTY"],
            "/work",
            true,
        );
        let ctx = wasi_context(&spec, &Entrypoint::parse("app.wasm#greet"), "c").unwrap();
        assert_eq!(ctx.args, ["app.wasm", "a b"]);
        assert_eq!(ctx.entry, "greet");
        assert_eq!(
            ctx.env,
            [
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("EMPTY".into(), String::new())
            ]
        );
        assert_eq!(ctx.preopens.len(), 2);
        assert!(ctx.preopens.iter().all(|p| p.read_only));
        assert_eq!(ctx.preopens[1].host_path, PathBuf::from("/work"));
        assert_eq!(ctx.preopens[1].guest_path, ".");
        assert!(!ctx.network);
    }

    #[test]
    fn network_only_when_the_annotation_allows_it() {
        let entry = Entrypoint::parse("/m.wasm");
        for (value, allowed) in [("allow", true), ("deny", false), ("true", false)] {
            let spec = annotated(
                spec(&["/m.wasm"], &[], "/", false),
                NETWORK_ANNOTATION,
                value,
            );
            assert_eq!(
                wasi_context(&spec, &entry, "c").unwrap().network,
                allowed,
                "{value}"
            );
        }
    }

    #[test]
    fn only_our_annotations_reach_the_engine() {
        let spec = annotated(
            annotated(
                spec(&["/m.wasm"], &[], "/", false),
                "io.containerd.wasm.http.max-instance-reuse",
                "8",
            ),
            "io.kubernetes.cri.sandbox-id",
            "abc",
        );
        let ctx = wasi_context(&spec, &Entrypoint::parse("/m.wasm"), "c").unwrap();
        assert_eq!(
            ctx.annotations,
            BTreeMap::from([(
                "io.containerd.wasm.http.max-instance-reuse".to_string(),
                "8".to_string()
            )])
        );
    }

    #[test]
    fn the_rootfs_is_writable_unless_read_only() {
        let ctx = wasi_context(
            &spec(&["/m.wasm"], &[], "/", false),
            &Entrypoint::parse("/m.wasm"),
            "c",
        )
        .unwrap();
        assert_eq!(ctx.preopens.len(), 1);
        assert!(!ctx.preopens[0].read_only);
        assert_eq!(ctx.entry, "_start");
    }
}
