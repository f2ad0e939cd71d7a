//! A new container: the helper mounts its rootfs, prepares its workload, adapts the bundle's
//! spec for `libcontainer` and builds the container, whose init process then waits for
//! `start`.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use log::{debug, info, warn};

use super::builder::{base_builder, with_stdio};
use super::bundle::{load_spec_json, rootfs_path};
use super::prepare::prepare;
use super::rootfs;
use crate::engine::Engine;
use crate::request::{CreateRequest, Kind};

pub fn create<E: Engine>(
    request: &CreateRequest,
    engine: Option<E>,
) -> anyhow::Result<(i32, Kind)> {
    let id = &request.id;
    let began = Instant::now();
    // On failure the shim unmounts whatever was mounted.
    rootfs::mount_all(&request.bundle.join("rootfs"), &request.rootfs)?;
    let mounted = Instant::now();
    let (mut spec_json, mut spec) = load_spec_json(&request.bundle)?;
    let edited = run_the_only_module_without_args(&mut spec_json, &mut spec, &request.wasm_modules);
    let rootfs = rootfs_path(&spec, &request.bundle)?;
    let (workload, executor) = prepare(&spec, &rootfs, id, engine, true)?;
    let prepared = Instant::now();
    // State under this id can only be a crashed shim's (containerd's ids are unique, and the
    // shim refused a second create of a live one): it must not block the new container.
    if request.state_root.join(id).exists() {
        warn!(id = id.as_str(); "container {id}: removing the state a crashed shim left in {}", request.state_root.display());
        crate::container_state::remove_state(&request.state_root, id);
    }
    std::fs::create_dir_all(&request.state_root)
        .with_context(|| format!("create state directory {}", request.state_root.display()))?;
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let systemd_running = Path::new("/run/systemd/system").exists();
    let systemd = systemd_cgroup_driver(request.systemd_cgroup, cgroups_path, systemd_running)
        .with_context(|| format!("container {id}"))?;
    super::spec_compat::rewrite_for_libcontainer(
        &request.bundle,
        spec_json,
        &rootfs,
        systemd,
        edited,
    )
    .with_context(|| format!("container {id}"))?;
    let builder = base_builder(id, &request.state_root, executor, workload.kind)?;
    let built = with_stdio(builder, request.console_socket.as_deref(), &request.stdio)?
        .as_init(&request.bundle)
        .with_systemd(systemd)
        .with_detach(true)
        .build();
    // On failure the shim removes what libcontainer may have left (state directory, cgroup).
    let container = built
        .map_err(|e| anyhow!(e).context(format!("create container {id} with libcontainer")))?;
    let pid = container
        .pid()
        .ok_or_else(|| anyhow!("libcontainer created container {id} without an init pid"))?
        .as_raw();
    info!(id = id.as_str(); "created {:?} container {id} running {}, init pid {pid}", workload.kind, workload.entrypoint.path);
    super::phases::record("rootfs mount", began, mounted);
    super::phases::record("spec and workload", mounted, prepared);
    super::phases::record("container setup", prepared, Instant::now());
    debug!(
        id = id.as_str();
        "create phases of {id}: rootfs mount {:?}, spec and workload {:?}, container (namespaces, cgroup, mounts, init) {:?}",
        mounted - began,
        prepared - mounted,
        prepared.elapsed()
    );
    Ok((pid, workload.kind))
}

/// A Wasm OCI artifact without an entry point in its config (a plain module pushed as an
/// artifact) runs its one module, as the image's only content: set as `process.args` in the
/// spec and in its JSON (which `libcontainer`'s init reads, and refuses without args). Whether
/// it changed them.
fn run_the_only_module_without_args(
    spec_json: &mut serde_json::Value,
    spec: &mut oci_spec::runtime::Spec,
    modules: &[String],
) -> bool {
    let [module] = modules else { return false };
    let Some(process) = spec.process_mut() else {
        return false;
    };
    if process.args().as_ref().is_some_and(|args| !args.is_empty()) {
        return false;
    }
    process.set_args(Some(vec![module.clone()]));
    spec_json["process"]["args"] = serde_json::json!([module]);
    true
}

/// Whether the container's cgroup is placed through systemd, as runc decides: with the runtime
/// option `SystemdCgroup = true`, and otherwise with cgroupfs, where a `slice:prefix:name`
/// cgroupsPath (CRI writes one for a cgroup parent ending in `.slice`) is a plain path.
/// Docker with its systemd cgroup driver sends that form and, to a runtime other than runc, no
/// option: on a node where systemd runs, the form alone selects systemd.
fn systemd_cgroup_driver(
    option: bool,
    cgroups_path: Option<&Path>,
    systemd_running: bool,
) -> anyhow::Result<bool> {
    if option {
        if !systemd_running {
            bail!(
                "the runtime option SystemdCgroup = true asks for systemd's cgroup driver, but \
                 systemd is not running on this node: remove the option (cgroupfs driver)"
            );
        }
        return Ok(true);
    }
    let slice_form = cgroups_path.is_some_and(|path| is_systemd_form(&path.to_string_lossy()));
    Ok(slice_form && systemd_running)
}

/// systemd's `slice:prefix:name` form of a cgroupsPath.
fn is_systemd_form(path: &str) -> bool {
    !path.starts_with('/') && path.split(':').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_driver_is_chosen_as_runc_chooses_it() {
        let slice = Some(Path::new("test.slice:cri-containerd:abc"));
        let plain = Some(Path::new("/kubepods/pod1/abc"));
        let relative = Some(Path::new("test.slice/abc"));
        // (SystemdCgroup option, cgroupsPath, systemd running, systemd driver?)
        let cases = [
            (false, slice, false, false),
            (false, plain, false, false),
            (false, relative, false, false),
            (false, None, false, false),
            (false, slice, true, true),
            (false, plain, true, false),
            (true, slice, true, true),
            (true, plain, true, true),
            (true, None, true, true),
        ];
        for (option, path, running, systemd) in cases {
            let chosen = systemd_cgroup_driver(option, path, running).unwrap();
            assert_eq!(
                chosen, systemd,
                "option {option}, path {path:?}, running {running}"
            );
        }
        for path in [slice, plain, None] {
            let error = systemd_cgroup_driver(true, path, false).unwrap_err();
            assert!(format!("{error}").contains("SystemdCgroup"), "{error}");
        }
    }
}
