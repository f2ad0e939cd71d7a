//! A real Docker Engine (dockerd 28, containerd image store, on the private containerd 2.1)
//! driven through the `docker` CLI, as a Docker user does: `docker load` of our tarballs,
//! `docker run --runtime io.containerd.<engine>.v1` with and without `--platform`, `-i`, `-t`,
//! exit codes, `-d` then exec, top, stats, pause, update, logs, stop and `rm -f`, the runtimes
//! named in daemon.json, and nothing left behind. runc runs the same commands as the
//! reference, and the native demo runs on every Wasm shim too (hybrid).
//!
//! Run with `WASM_SHIMS_CONTAINERD=2.1 scripts/containerd.sh run scripts/dockerd.sh run
//! cargo test --release -p shim-conformance --test docker_engine -- --include-ignored`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use shim_conformance::docker::{
    Docker, Dockerd, container_name, ensure_loaded, full_id, inspect, load, remove, run_options,
    scope,
};
use shim_conformance::expect::{EXIT_SIGKILL, EXIT_SIGTERM, MISSING_FILE, message_explains};
use shim_conformance::images::{
    AUTH_GATEWAY, BAD_INPUTS, HTTP_HELLO, NATIVE_DEMO, TestImage, WASI_DEMO_APP,
    WASI_DEMO_APP_ARTIFACT, WASI_DEMO_APP_COMPONENT, WASI_DEMO_APP_WASI, bad,
};
use shim_conformance::leftovers::{Footprint, cgroup_roots, leftovers_in, shims_of};
use shim_conformance::registry::Registry;
use shim_conformance::target::{
    Target, all_targets, check_targets, wasm_shim_targets, wasm_targets,
};

/// `docker stop -t`: SIGTERM, this long, then SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// `docker run` of `target`'s image (loaded first) with `options` before the image and `args`
/// after it (the image's entrypoint is the demo program).
fn docker_run(target: &Target, name: &str, options: &[&str], args: &[&str]) -> Result<Docker> {
    ensure_loaded(target.workload.image())?;
    let mut command = vec!["run".to_owned()];
    command.extend(run_options(name, target));
    command.extend(options.iter().map(|o| (*o).to_owned()));
    command.push(target.workload.image().reference.to_owned());
    command.extend(args.iter().map(|a| (*a).to_owned()));
    Ok(Docker::new(command))
}

/// Runs `check` on container `name`, then removes it whatever happened.
fn with_container<T>(name: &str, check: impl FnOnce() -> Result<T>) -> Result<T> {
    let outcome = check();
    remove(name);
    outcome
}

#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_load_reads_our_image_tarballs() {
    let images: [&TestImage; 7] = [
        &WASI_DEMO_APP,
        &WASI_DEMO_APP_WASI,
        &NATIVE_DEMO,
        &WASI_DEMO_APP_COMPONENT,
        &HTTP_HELLO,
        &AUTH_GATEWAY,
        &BAD_INPUTS,
    ];
    let mut failures = Vec::new();
    for image in images {
        let outcome = load(image).and_then(|()| {
            let platform = inspect(image.reference, "{{.Os}}/{{.Architecture}}")?;
            ensure!(
                platform == image.platform,
                "docker image inspect says {platform}, the image is {}",
                image.platform
            );
            Ok(())
        });
        if let Err(e) = outcome {
            failures.push(format!("{}: {e:#}", image.reference));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The same module under both Wasm platform names, chosen with `--platform` or not.
#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_run_with_and_without_platform() {
    check_targets(&wasm_targets(), |target, test| {
        for (image, platform) in [
            (&WASI_DEMO_APP_WASI, Some("wasi/wasm32")),
            (&WASI_DEMO_APP, Some("wasip1/wasm")),
            (&WASI_DEMO_APP, None),
        ] {
            ensure_loaded(image)?;
            let mut command = vec!["run", "--rm", "--runtime", target.runtime.runtime_type];
            if let Some(platform) = platform {
                command.extend(["--platform", platform]);
            }
            command.extend([image.reference, "echo", test]);
            Docker::new(command)
                .output()?
                .expect(0, &format!("{test}\n"))?;
        }
        Ok(())
    });
}

/// A Wasm OCI artifact (the module is a layer of its own, not a tar): Docker's containerd
/// image store leaves the layer packed and the shim reads it from the content store.
#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_runs_a_wasm_artifact() {
    check_targets(&wasm_shim_targets(), |target, test| {
        ensure_loaded(&WASI_DEMO_APP_ARTIFACT)?;
        let command = [
            "run",
            "--rm",
            "--runtime",
            target.runtime.runtime_type,
            "--platform",
            "wasi/wasm",
            WASI_DEMO_APP_ARTIFACT.reference,
            "echo",
            test,
        ];
        Docker::new(command)
            .output()?
            .expect(0, &format!("{test}\n"))
    });
}

/// `docker run` of Wasm images that are in no local store yet: Docker pulls them (the image
/// and the artifact) from a registry, the suite's own on loopback, which Docker reaches over
/// plain HTTP as it does every registry on 127.0.0.0/8.
#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_pulls_and_runs_wasm_images_from_a_registry() {
    let served = [
        ("wasm/wasi-demo-app", &WASI_DEMO_APP),
        ("wasm/wasi-demo-app-artifact", &WASI_DEMO_APP_ARTIFACT),
    ];
    let registry = Registry::serve(&served).expect("the suite's registry");
    check_targets(&wasm_shim_targets(), |target, test| {
        for (repository, image) in served {
            let reference = registry.reference(repository, image);
            let command = [
                "run",
                "--rm",
                "--pull",
                "always",
                "--runtime",
                target.runtime.runtime_type,
                "--platform",
                image.platform,
                &reference,
                "echo",
                test,
            ];
            Docker::new(command)
                .output()?
                .expect(0, &format!("{test}\n"))
                .with_context(|| format!("docker run {reference}"))?;
            let manifest = format!("/v2/{repository}/manifests/");
            ensure!(
                registry.requests().iter().any(|r| r.contains(&manifest)),
                "Docker never asked the registry for {reference}; requests: {:?}",
                registry.requests()
            );
        }
        Ok(())
    });
    for (repository, image) in served {
        let _ = Docker::new(["rmi", &registry.reference(repository, image)]).output();
    }
}

#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_run_exit_codes_streams_and_files() {
    check_targets(&all_targets(), |target, test| {
        let name = container_name(test, target);
        docker_run(target, &name, &["--rm"], &["exit", "7"])?
            .output()?
            .expect(7, "")?;
        let out = docker_run(target, &name, &["--rm"], &["stderr", "to stderr"])?.output()?;
        ensure!(
            out.code == Some(0) && out.stdout.is_empty() && out.stderr.ends_with("to stderr\n"),
            "stderr: {}",
            out.describe()
        );
        // /etc/hostname is bound from dockerd's directory of the container: its short id.
        with_container(&name, || {
            let out = docker_run(target, &name, &[], &["cat", "/etc/hostname"])?.output()?;
            let id = full_id(&name)?;
            out.expect(0, &format!("{}\n", &id[..12]))
        })
    });
}

#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_run_interactive_and_tty() {
    check_targets(&all_targets(), |target, test| {
        let name = container_name(test, target);
        docker_run(target, &name, &["--rm", "-i"], &["stdin"])?
            .stdin("piped into docker run -i\n")
            .output()?
            .expect(0, "piped into docker run -i\n")?;
        // -t: one terminal for both streams; the CLI prints it on stdout.
        let out = docker_run(
            target,
            &name,
            &["--rm", "-t"],
            &["stderr", "on the terminal"],
        )?
        .output()?;
        ensure!(
            out.code == Some(0)
                && out.stdout.contains("on the terminal")
                && !out.stderr.contains("on the terminal"),
            "-t: {}",
            out.describe()
        );
        Ok(())
    });
}

#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_verbs_on_a_running_container() {
    check_targets(&all_targets(), |target, test| {
        let name = container_name(test, target);
        with_container(&name, || {
            docker_run(target, &name, &["-d"], &["sleep", "600"])?
                .output()?
                .success()?;
            let id = full_id(&name)?;
            wait_for_state(&name, "running")?;
            let footprint = Footprint::observe_in(&scope(), &id);
            ensure!(
                !footprint.processes().is_empty(),
                "no process of the running container seen"
            );
            verbs(target, &name, &id)?;
            docker_stop(target, &name)?;
            Docker::new(["logs", &name])
                .output()?
                .expect(0, "sleeping 600\n")?;
            Docker::new(["rm", &name]).output()?.success()?;
            footprint.expect_gone()
        })
    });
}

/// exec, top, stats, pause/unpause and update on running container `name` (full id `id`).
fn verbs(target: &Target, name: &str, id: &str) -> Result<()> {
    let mut exec = vec!["exec", name];
    exec.extend(target.args(&["echo", "exec works"]));
    Docker::new(exec).output()?.expect(0, "exec works\n")?;

    let top = Docker::new(["top", name]).stdout()?;
    ensure!(top.lines().count() >= 2, "docker top: no process: {top:?}");

    let stats = Docker::new([
        "stats",
        "--no-stream",
        "--format",
        "{{.PIDs}} {{.MemUsage}}",
        name,
    ])
    .stdout()?;
    let pids: u32 = stats.split(' ').next().unwrap_or("").parse().unwrap_or(0);
    ensure!(
        pids > 0 && !stats.starts_with("0 0B"),
        "docker stats: {stats:?}"
    );

    Docker::new(["pause", name]).output()?.success()?;
    wait_for_state(name, "paused")?;
    Docker::new(["unpause", name]).output()?.success()?;
    wait_for_state(name, "running")?;

    let limit: u64 = 96 * 1024 * 1024;
    Docker::new([
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "96m",
        "--cpus",
        "0.5",
        name,
    ])
    .output()?
    .success()?;
    let seen = memory_limit(id)?;
    ensure!(
        seen == limit,
        "docker update: the cgroup's memory limit is {seen}, expected {limit}"
    );
    Ok(())
}

/// The memory limit of container `id`'s cgroup (`/docker/<id>`), cgroup v1 or v2.
fn memory_limit(id: &str) -> Result<u64> {
    for root in cgroup_roots() {
        for file in ["memory.limit_in_bytes", "memory.max"] {
            let path = root.join("docker").join(id).join(file);
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text
                    .trim()
                    .parse()
                    .with_context(|| format!("{}: {text:?}", path.display()));
            }
        }
    }
    bail!("no memory cgroup /docker/{id}")
}

/// `docker stop -t 2`: a Wasm module ends at SIGTERM; the native demo, pid 1 of its
/// namespace without a handler, ignores it and is killed after the grace period.
fn docker_stop(target: &Target, name: &str) -> Result<()> {
    let started = Instant::now();
    let grace = STOP_GRACE.as_secs().to_string();
    Docker::new(["stop", "-t", &grace, name])
        .output()?
        .success()?;
    let took = started.elapsed();
    let code: i32 = inspect(name, "{{.State.ExitCode}}")?.parse()?;
    if target.is_wasm() {
        ensure!(
            code == EXIT_SIGTERM && took < STOP_GRACE,
            "docker stop: exit code {code} after {took:?}, expected {EXIT_SIGTERM} before the grace period"
        );
    } else {
        ensure!(
            code == EXIT_SIGKILL && took >= STOP_GRACE,
            "docker stop: exit code {code} after {took:?}, expected {EXIT_SIGKILL} after the grace period"
        );
    }
    Ok(())
}

/// Waits for `docker inspect` to report state `state` (running, paused).
fn wait_for_state(name: &str, state: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = inspect(name, "{{.State.Status}}")?;
        if now == state {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} is {now}, not {state}, after 20s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_rm_force_leaves_nothing() {
    check_targets(&all_targets(), |target, test| {
        let name = container_name(test, target);
        with_container(&name, || {
            docker_run(target, &name, &["-d"], &["sleep", "600"])?
                .output()?
                .success()?;
            let id = full_id(&name)?;
            wait_for_state(&name, "running")?;
            let footprint = Footprint::observe_in(&scope(), &id);
            // The checks must see the running container, or their silence after rm means nothing.
            let present = leftovers_in(&scope(), &id);
            for kind in ["process in the container's cgroup", "bundle", "shim socket"] {
                ensure!(
                    present.iter().any(|l| l.starts_with(kind)),
                    "the leftover checks see no {kind} of the running container: {present:#?}"
                );
            }
            Docker::new(["rm", "--force", &name]).output()?.success()?;
            let listed = Docker::new(["ps", "--all", "--quiet", "--filter", &format!("id={id}")])
                .stdout()?;
            ensure!(listed.is_empty(), "docker ps -a still lists {listed:?}");
            footprint.expect_gone()
        })
    });
}

/// daemon.json's runtimes (scripts/dockerd.sh): `--runtime <engine>` names the runtime type,
/// `--runtime <engine>-by-path` the shim binary by absolute path; either way this engine's
/// shim serves the container.
#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_named_runtimes_from_daemon_json() {
    check_targets(&wasm_targets(), |target, test| {
        ensure_loaded(&WASI_DEMO_APP)?;
        let engine = target.runtime.name;
        for runtime in [engine.to_owned(), format!("{engine}-by-path")] {
            let name = container_name(&format!("{test}-{runtime}"), target);
            with_container(&name, || {
                Docker::new([
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--runtime",
                    &runtime,
                    WASI_DEMO_APP.reference,
                    "sleep",
                    "600",
                ])
                .output()?
                .success()?;
                let id = full_id(&name)?;
                wait_for_state(&name, "running")?;
                let shims: Vec<String> = shims_of(&id)
                    .into_iter()
                    .map(|pid| shim_conformance::procfs::cmdline(pid).join(" "))
                    .collect();
                ensure!(
                    shims.len() == 1 && shims[0].contains(target.runtime.binary),
                    "--runtime {runtime}: expected one {} for the container, found {shims:?}",
                    target.runtime.binary
                );
                Docker::new(["rm", "--force", &name]).output()?.success()?;
                Ok(())
            })?;
        }
        Ok(())
    });
}

/// A module that is not in the image: `docker run` fails and its user reads why.
#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_run_missing_module_tells_the_user() {
    check_targets(&all_targets(), |target, test| {
        let name = container_name(test, target);
        let missing = if target.is_wasm() {
            bad::MISSING_MODULE
        } else {
            "/no-such-program"
        };
        let out = docker_run(target, &name, &["--rm", "--entrypoint", missing], &[])?.output()?;
        // 127, "command not found": Docker's code for runc's "no such file or directory",
        // which the shims say too.
        ensure!(
            out.code == Some(127),
            "a missing program: expected exit code 127, {}",
            out.describe()
        );
        message_explains(&out.stderr, &[missing], MISSING_FILE).with_context(|| out.describe())?;
        let listed = Docker::new([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("name=^{name}$"),
        ])
        .stdout()?;
        ensure!(listed.is_empty(), "docker ps -a still lists {listed:?}");
        Ok(())
    });
}

/// Docker's systemd cgroup driver, on a second private dockerd: Docker writes cgroupsPath
/// `system.slice:docker:<id>` and tells a runtime other than runc nothing more (runc gets
/// `SystemdCgroup` and, where systemd does not run, refuses). Where systemd runs, the shim
/// places the container in systemd's scope `docker-<id>.scope`; where it does not (this
/// machine), it takes the text as a cgroupfs path, as runc's default driver would.
#[test]
#[ignore = "needs the private dockerd: run `make test`"]
fn docker_systemd_cgroup_driver() {
    let systemd = std::path::Path::new("/run/systemd/system").exists();
    let dockerd = Dockerd::start("systemd", "systemd").expect("a dockerd with the systemd driver");
    check_targets(&wasm_targets(), |target, test| {
        let name = container_name(test, target);
        ensure_loaded(target.workload.image())?;
        let mut command = vec!["run".to_owned()];
        command.extend(run_options(&name, target));
        command.extend([
            target.workload.image().reference.to_owned(),
            "cat".to_owned(),
            "/proc/self/cgroup".to_owned(),
        ]);
        let out = Docker::new(command).at(&dockerd).output();
        let id = full_id_at(&dockerd, &name);
        let _ = Docker::new(["rm", "--force", &name]).at(&dockerd).output();
        let (out, id) = (out?, id?);
        let cgroup = if systemd {
            format!("docker-{id}.scope")
        } else {
            format!("system.slice:docker:{id}")
        };
        ensure!(
            out.code == Some(0) && out.stdout.lines().any(|line| line.ends_with(&cgroup)),
            "systemd running: {systemd}; expected the cgroup {cgroup} in /proc/self/cgroup; {}",
            out.describe()
        );
        let left = leftovers_in(&scope(), &id);
        ensure!(left.is_empty(), "left behind: {left:#?}");
        Ok(())
    });
}

/// The full id of container `name` of `dockerd`.
fn full_id_at(dockerd: &Dockerd, name: &str) -> Result<String> {
    Ok(Docker::new(["inspect", "--format", "{{.Id}}", name])
        .at(dockerd)
        .stdout()?
        .trim()
        .to_owned())
}
