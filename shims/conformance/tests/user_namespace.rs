//! Containers in a user namespace (`linux.uidMappings`/`gidMappings`: `ctr run --uidmap`,
//! Kubernetes' `hostUsers: false` on containerd 1.7+): the container's process, Wasm or
//! native, sees the mapping, as under runc. An exec process must run inside the namespace or
//! not at all: runc runs it inside; our shims refuse it with a message (libcontainer 0.7
//! would start it outside, as the node's root), which this test holds them to.

use std::time::Duration;

use anyhow::{Result, ensure};
use shim_conformance::container::{Container, Status};
use shim_conformance::target::{Target, all_targets, check_targets_in_turn};

const STARTUP: Duration = Duration::from_secs(20);

/// Container ids 0..65536 are the node's 100000..165536.
const MAPPING: &str = "0:100000:65536";

/// `/proc/self/uid_map` of a process in the mapping: `0 100000 65536`, in columns.
fn expect_mapped(uid_map: &str, who: &str) -> Result<()> {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    ensure!(
        fields == ["0", "100000", "65536"],
        "{who}: /proc/self/uid_map should show the container's mapping {MAPPING}: {uid_map:?}"
    );
    Ok(())
}

fn in_user_namespace(target: &Target, label: &str) -> Container {
    target
        .container(label)
        .flag("--uidmap", MAPPING)
        .flag("--gidmap", MAPPING)
}

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_container_runs_in_its_user_namespace_and_no_exec_runs_outside() {
    // One target at a time: ctr makes one remapped copy of an image's snapshot for a mapping,
    // and two at once collide ("already exists").
    check_targets_in_turn(&all_targets(), |target, test| {
        let init = in_user_namespace(target, &format!("{test}-init"))
            .run(&target.args(&["cat", "/proc/self/uid_map"]))?;
        init.success()?;
        expect_mapped(&init.stdout, "init process")?;

        let container = in_user_namespace(target, test);
        container.run_detached(&target.args(&["sleep", "600"]))?;
        container.wait_for_status(Status::Running, STARTUP)?;
        let exec = container.exec("uid-map", &target.args(&["cat", "/proc/self/uid_map"]));
        match (target.runtime.runs_wasm, exec) {
            (false, exec) => expect_mapped(&exec?.stdout, "runc's exec process"),
            (true, Ok(out)) => {
                // Running is right only inside the namespace.
                expect_mapped(&out.stdout, "exec process")
            }
            (true, Err(e)) => {
                let message = format!("{e:#}");
                ensure!(
                    message.contains("user namespace"),
                    "the refused exec should say why: {message}"
                );
                Ok(())
            }
        }
    });
}
