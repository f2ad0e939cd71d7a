//! An exec process in a running container (`ctr task exec`, `kubectl exec`, exec probes),
//! started by the helper with `libcontainer`'s tenant builder in the container's namespaces
//! and cgroup.

use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use log::{debug, info};
use oci_spec::runtime::Spec;

use super::builder::{base_builder, with_stdio};
use super::bundle::{load_spec, rootfs_path};
use super::prepare::prepare;
use crate::engine::Engine;
use crate::request::{ExecRequest, Kind};

/// Starts an exec process in the running container `request.container_id`, in its
/// namespaces and cgroup, with the engine for a module. args[0] is resolved in the rootfs
/// mounted at create (`/proc/<pid>/root` would show volumes too, but `safe-path` resolves
/// that magic link to the reader's own root).
pub fn exec<E: Engine>(request: &ExecRequest, engine: Option<E>) -> anyhow::Result<(i32, Kind)> {
    let id = &request.container_id;
    let exec_id = &request.exec_id;
    let began = Instant::now();
    let mut process: oci_spec::runtime::Process =
        serde_json::from_value(request.process.clone())
            .context("the exec's process spec is not an OCI process")?;
    let container = libcontainer::container::Container::load(request.state_root.join(id))
        .with_context(|| format!("load the state of container {id}"))?;
    let mut spec = load_spec(container.bundle())?;
    refuse_outside_user_namespace(&spec)
        .with_context(|| format!("exec process {exec_id} of container {id}"))?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let exec_filter = super::exec_seccomp::plan(seccomp, &mut process)
        .with_context(|| format!("exec process {exec_id} of container {id}"))?;
    spec.set_process(Some(process.clone()));
    let rootfs = rootfs_path(&spec, container.bundle())?;
    let (workload, mut executor) = prepare(&spec, &rootfs, id, engine, false)?;
    executor.exec_filter = exec_filter;
    let prepared = Instant::now();
    let builder = base_builder(id, &request.state_root, executor, workload.kind)?;
    let builder = with_stdio(builder, request.console_socket.as_deref(), &request.stdio)?;
    // libcontainer reads a tenant's full process spec (user, capabilities, rlimits...) from a
    // file, as runc exec does.
    if exec_id.contains('/') || exec_id.starts_with('.') {
        bail!("invalid exec id {exec_id:?}");
    }
    let process_file = request
        .state_root
        .join(id)
        .join(format!("exec-{exec_id}.json"));
    // The process as planned: with the capabilities lent to load the seccomp filter, if any.
    let process_json = serde_json::to_vec(&process)?;
    std::fs::write(&process_file, process_json)
        .with_context(|| format!("write {}", process_file.display()))?;
    let built = builder
        .as_tenant()
        .with_process(Some(&process_file))
        .with_detach(true)
        .build();
    let _ = std::fs::remove_file(&process_file);
    let pid = built
        .map_err(|e| {
            anyhow!(e).context(format!(
                "start exec process {exec_id} in container {id} with libcontainer"
            ))
        })?
        .as_raw();
    info!(id = id.as_str(); "exec process {exec_id} of container {id} runs {} ({:?}), pid {pid}", workload.entrypoint.path, workload.kind);
    super::phases::record("spec and workload", began, prepared);
    super::phases::record("process setup", prepared, Instant::now());
    debug!(
        id = id.as_str();
        "exec phases of {exec_id} in {id}: spec and workload {:?}, process setup {:?}",
        prepared - began,
        prepared.elapsed()
    );
    Ok((pid, workload.kind))
}

/// An exec process cannot join a container's user namespace: libcontainer 0.7's tenant
/// builder leaves that namespace out, so the process would run in the node's user namespace,
/// as the node's root with the container's capabilities, outside the confinement the
/// container asked for. Refused until it can join.
fn refuse_outside_user_namespace(spec: &Spec) -> anyhow::Result<()> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let user = oci_spec::runtime::LinuxNamespaceType::User;
    if namespaces.is_some_and(|nss| nss.iter().any(|ns| ns.typ() == user)) {
        bail!(
            "the container runs in a user namespace, which exec processes cannot join in this \
             shim yet (libcontainer 0.7 would start the process outside it, as the node's \
             root): refused"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_is_refused_in_a_user_namespace_only() {
        use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType};
        let spec_with = |types: &[LinuxNamespaceType]| {
            let namespaces = types
                .iter()
                .map(|t| LinuxNamespaceBuilder::default().typ(*t).build().unwrap())
                .collect::<Vec<_>>();
            let linux = LinuxBuilder::default()
                .namespaces(namespaces)
                .build()
                .unwrap();
            let mut spec = Spec::default();
            spec.set_linux(Some(linux));
            spec
        };
        let plain = spec_with(&[LinuxNamespaceType::Pid, LinuxNamespaceType::Mount]);
        assert!(refuse_outside_user_namespace(&plain).is_ok());
        let user = spec_with(&[LinuxNamespaceType::Mount, LinuxNamespaceType::User]);
        let error = refuse_outside_user_namespace(&user).unwrap_err();
        assert!(format!("{error}").contains("user namespace"), "{error}");
    }
}
