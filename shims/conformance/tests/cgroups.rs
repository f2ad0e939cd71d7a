//! The cgroup driver is chosen as runc chooses it: systemd's with the runtime option
//! `SystemdCgroup = true`, cgroupfs otherwise, where a cgroupsPath in systemd's
//! `slice:prefix:name` form (CRI writes one for a pod whose cgroup parent ends in `.slice`,
//! as Kubernetes' conformance suite's pods have) is an ordinary cgroup name. This node runs no
//! systemd; where one runs, the option must work instead of failing.

use std::path::Path;

use anyhow::ensure;
use prost::Message;
use prost_types::Any;
use shim_conformance::api::Api;
use shim_conformance::leftovers::expect_no_leftovers;
use shim_conformance::target::{all_targets, check_targets};

/// The part of containerd's runc options message (`containerd.runc.v1.Options`) that names the
/// cgroup driver; containerd sends that message to every runtime.
#[derive(Clone, PartialEq, Message)]
struct RuncOptions {
    #[prost(bool, tag = "9")]
    systemd_cgroup: bool,
}

fn systemd_cgroup_option() -> Any {
    Any {
        type_url: "containerd.runc.v1.Options".to_owned(),
        value: RuncOptions {
            systemd_cgroup: true,
        }
        .encode_to_vec(),
    }
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn without_the_option_a_slice_form_path_names_a_cgroupfs_cgroup() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test);
        let id = container.id().to_owned();
        let path = format!("wasm-shims-test.slice:conformance:{id}");
        container.create(&target.args(&["cat", "/proc/self/cgroup"]))?;
        Api::connect()?.edit_spec(&id, |spec| {
            spec["linux"]["cgroupsPath"] = serde_json::json!(path);
        })?;
        let out = container.start_task()?;
        // `N:memory:/…`: the memory controller's hierarchy, which every driver manages.
        let memory = out.stdout.lines().find(|line| line.contains(":memory:"));
        ensure!(
            out.code == Some(0) && memory.is_some_and(|line| line.ends_with(&path)),
            "cgroupsPath {path} without SystemdCgroup: the memory cgroup should be that one; {}",
            out.describe()
        );
        container.delete()?;
        expect_no_leftovers(&id)
    });
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_systemd_cgroup_option_selects_systemd() {
    let systemd = systemd_running();
    check_targets(&all_targets(), |target, test| {
        for (label, path) in [("slice", "system.slice:conformance:{id}"), ("plain", "")] {
            let container = target.container(&format!("{test}-{label}"));
            let id = container.id().to_owned();
            container.create(&target.args(&["echo", "placed"]))?;
            if !path.is_empty() {
                let path = path.replace("{id}", &id);
                Api::connect()?.edit_spec(&id, |spec| {
                    spec["linux"]["cgroupsPath"] = serde_json::json!(path);
                })?;
            }
            let created = Api::connect()?.create_task_with_options(&id, systemd_cgroup_option());
            match (systemd, created) {
                (true, Ok(_)) => {}
                (true, Err(e)) => return Err(e.context(format!("{label} path, systemd running"))),
                (false, Ok(_)) => anyhow::bail!(
                    "{label} path: SystemdCgroup = true was accepted on a node without systemd"
                ),
                (false, Err(e)) => {
                    let message = format!("{e:#}");
                    ensure!(
                        message.contains("systemd"),
                        "{label} path: the error should say that systemd is needed: {message}"
                    );
                }
            }
            drop(container);
            expect_no_leftovers(&id)?;
        }
        Ok(())
    });
}
