//! What a Wasm module can reach: only its preopened directories (no `..`, absolute path or
//! symlink out of them), only `process.env`, and no network but the container's own
//! namespace. runc runs the native demo as the reference where Linux gives the same answer.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::api::Api;
use shim_conformance::container::{Container, Status};
use shim_conformance::environment::containerd;
use shim_conformance::expect::{self, failed_at_create};
use shim_conformance::images::{HOSTILE, ISOLATION, demo_module_path, hostile, isolation};
use shim_conformance::leftovers::{expect_no_leftovers, process_in_container};
use shim_conformance::target::{Target, all_targets, check_targets, wasm_targets};

const PREOPENS: &str = "io.containerd.wasm.preopens";
const NETWORK: &str = "io.containerd.wasm.network";

fn isolated(target: &Target, test: &str) -> Container {
    Container::new(test, target.runtime, &ISOLATION)
}

/// Runs the demo with `args` and expects it to fail (status 1) without printing anything.
fn refused(container: Container, args: &[&str]) -> Result<()> {
    let mut full = vec!["/wasi-demo-app.wasm"];
    full.extend_from_slice(args);
    let out = container.run(&full)?;
    if out.code != Some(1) || !out.stdout.is_empty() {
        bail!(
            "`{}` should be refused (exit 1, nothing printed); got {}",
            out.command,
            out.describe()
        );
    }
    Ok(())
}

/// With only `/data` preopened, the module reads `/data` and nothing else: not through `..`,
/// not by an absolute path, not through a symlink (absolute or relative) that leads out.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_narrowed_module_reaches_only_its_preopens() {
    check_targets(&wasm_targets(), |target, test| {
        let narrowed = || isolated(target, test).annotation(PREOPENS, "/data");
        narrowed()
            .run(&["/wasi-demo-app.wasm", "cat", "/data/hello.txt"])?
            .expect(0, "hello from a file\n")?;
        for escape in [
            "/data/../secret/secret.txt",
            isolation::SECRET_FILE,
            isolation::ABSOLUTE_LINK,
            isolation::RELATIVE_LINK,
        ] {
            refused(narrowed(), &["cat", escape])
                .with_context(|| format!("escape via {escape}"))?;
        }
        refused(narrowed(), &["ls", "/"])
    });
}

/// The whole rootfs is preopened by default, and still `..` never climbs above it (under
/// runc the kernel makes `/..` the root itself: the same file, so that is the reference).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn dot_dot_never_leaves_the_rootfs() {
    check_targets(&wasm_targets(), |target, test| {
        isolated(target, test)
            .run(&["/wasi-demo-app.wasm", "cat", isolation::SECRET_FILE])?
            .expect(0, isolation::SECRET)?;
        refused(
            isolated(target, test),
            &["cat", "/../../../secret/secret.txt"],
        )
    });
}

/// `:ro` makes a preopen read-only: the module's write is refused, or, on an engine whose
/// WASI cannot make a directory read-only (WAMR), the container is refused at create unless
/// the kernel enforces it (read-only rootfs). Never is the file written. Without `:ro` the
/// module may write there.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_preopen_can_be_read_only() {
    check_targets(&wasm_targets(), |target, test| {
        let write = ["/wasi-demo-app.wasm", "write", "/data/new.txt", "x"];
        let container = isolated(target, test).annotation(PREOPENS, "/data:ro");
        let out = container.run(&write)?;
        if expect::is_create_failure(&out) {
            failed_at_create(&out, &[PREOPENS, "/data"], &["read-only"])?;
        } else if out.code != Some(1) || !out.stdout.is_empty() {
            bail!(
                "`{}` should be refused (exit 1, nothing printed); got {}",
                out.command,
                out.describe()
            );
        }
        expect_no_leftovers(container.id())?;
        let container = isolated(target, test)
            .annotation(PREOPENS, "/data:ro")
            .read_only();
        container
            .run(&["/wasi-demo-app.wasm", "cat", "/data/hello.txt"])?
            .expect(0, "hello from a file\n")?;
        refused(
            isolated(target, test)
                .annotation(PREOPENS, "/data:ro")
                .read_only(),
            &["write", "/data/new.txt", "x"],
        )?;
        isolated(target, test)
            .annotation(PREOPENS, "/data")
            .run(&write)?
            .expect(0, "wrote 1 bytes to /data/new.txt\n")
    });
}

/// A bad preopens annotation fails at create and names the annotation.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_bad_preopens_annotation_fails_at_create() {
    check_targets(&wasm_targets(), |target, test| {
        for (value, reason) in [
            ("data", "absolute"),
            ("/data/../secret", ".."),
            ("/no-such-dir", "not a directory"),
        ] {
            let container = isolated(target, test).annotation(PREOPENS, value);
            let out = container.run(&["/wasi-demo-app.wasm", "ls", "/data"])?;
            failed_at_create(&out, &[PREOPENS], &[reason])
                .with_context(|| format!("{PREOPENS}={value}"))?;
            expect_no_leftovers(container.id())?;
        }
        Ok(())
    });
}

/// The entry point is resolved inside the rootfs: a symlink to a path of the host (where
/// the demo module really is) finds nothing.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn an_entry_point_symlink_to_the_host_is_not_followed() {
    let host_module = demo_module_path();
    assert!(
        containerd().path(&host_module).is_file(),
        "the symlink's target {} must exist where the shims run, or this test proves nothing",
        host_module.display()
    );
    check_targets(&wasm_targets(), |target, test| {
        let container = isolated(target, test);
        let out = container.run(&[isolation::HOST_LINK])?;
        failed_at_create(&out, &[isolation::HOST_LINK], expect::MISSING_FILE)?;
        expect_no_leftovers(container.id())
    });
}

/// The program's environment is exactly `process.env`, nothing of the shim's (whose own
/// environment has WASM_SHIM_CACHE_DIR, TTRPC_ADDRESS, ...). runc adds `HOME` when the spec
/// has none, as Linux logins do; nothing else may be added.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_environment_is_only_process_env() {
    check_targets(&all_targets(), |target, test| {
        let container = target.container(test).env("ONLY_THIS=1");
        container.create(&target.args(&["env"]))?;
        let spec: serde_json::Value =
            serde_json::from_slice(&Api::connect()?.spec(container.id())?)?;
        let mut expected: Vec<String> = spec["process"]["env"]
            .as_array()
            .context("the spec has no process.env")?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        ensure!(
            expected.iter().any(|var| var == "ONLY_THIS=1"),
            "--env did not reach the spec: {expected:?}"
        );
        let out = container.start_task()?;
        let mut printed: Vec<&str> = out.stdout.lines().collect();
        if !target.runtime.runs_wasm && !expected.iter().any(|v| v.starts_with("HOME=")) {
            printed.retain(|var| *var != "HOME=/");
        }
        expected.sort();
        ensure!(
            out.code == Some(0) && printed == expected,
            "`{}` printed {printed:?}, expected exactly process.env {expected:?}; {}",
            out.command,
            out.describe()
        );
        Ok(())
    });
}

/// Without the annotation a module has no way to open a socket: WasmEdge's `sock_open`
/// extension, which WasmEdge cannot confine, is refused at create naming the annotation that
/// allows it (and with it the module runs); the other engines have no such import at all.
/// (WASI preview 1 itself has no call that opens a socket; these engines give no preview 2
/// sockets.)
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_module_cannot_open_sockets() {
    check_targets(&wasm_targets(), |target, test| {
        let container = Container::new(test, target.runtime, &HOSTILE);
        let out = container.run(&[hostile::SOCKET_IMPORT])?;
        let provides_sockets = target.runtime.name == "wasmedge";
        let why: &[&str] = if provides_sockets {
            &[NETWORK]
        } else {
            expect::UNRESOLVED_IMPORT
        };
        failed_at_create(&out, &[hostile::SOCKET_IMPORT, "sock_open"], why)?;
        expect_no_leftovers(container.id())?;
        if provides_sockets {
            Container::new(&format!("{test}-allowed"), target.runtime, &HOSTILE)
                .annotation(NETWORK, "allow")
                .run(&[hostile::SOCKET_IMPORT])?
                .expect(0, "")?;
        }
        Ok(())
    });
}

/// A module has no threads to start (nor processes: WASI preview 1 has no such call).
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn a_module_cannot_start_threads() {
    check_targets(&wasm_targets(), |target, test| {
        target
            .run(test, &["threads", "2"])?
            .expect(1, "started 0 of 2 threads\n")
    });
}

/// The container's process is in a network namespace of its own, not containerd's (nor the
/// host's, where this test runs), with or without `io.containerd.wasm.network=allow`: whatever network a module is
/// given is the container's.
#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn the_network_is_the_containers_own_namespace() {
    check_targets(&all_targets(), |target, test| {
        for allow in [false, true] {
            let mut container = target.container(test);
            if allow {
                container = container.annotation(NETWORK, "allow");
            }
            container.run_detached(&target.args(&["sleep", "600"]))?;
            container.wait_for_status(Status::Running, Duration::from_secs(10))?;
            let pid = process_in_container(container.id())?;
            let net = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net"));
            let mine = net(pid)?;
            let containerds = net(containerd().pid())?;
            let hosts = std::fs::read_link("/proc/self/ns/net")?;
            ensure!(
                mine != containerds && mine != hosts,
                "container {} (network={allow}) shares a network namespace: {mine:?}, containerd {containerds:?}, this test (the host's) {hosts:?}",
                container.id()
            );
            container.kill("SIGKILL")?;
            container.wait_for_status(Status::Stopped, Duration::from_secs(10))?;
        }
        Ok(())
    });
}
