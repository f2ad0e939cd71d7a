//! Wasm images pulled from a registry by CRI's PullImage, as the kubelet gets them, then run in
//! a pod: the suite's own registry (`shim_conformance::registry`, plain HTTP on loopback in
//! containerd's network namespace) serves the demo as an ordinary image (a tar layer, platform
//! wasip1/wasm) and as a Wasm OCI artifact (the module is the layer).
//!
//! What happens differs by containerd, and is what docs/kubernetes.md says:
//! - 1.6 pulls and runs the ordinary image, and refuses the artifact while unpacking it;
//! - 1.7 and 2.x pull and run both; on 2.x through the transfer service (containerd's
//!   default, what scripts/containerd.sh writes) and through CRI's local pull
//!   (`use_local_image_pull = true`, which older guides recommend for Wasm images: `make test`
//!   runs this file once more on 2.1 with WASM_SHIMS_CRI_LOCAL_PULL=true).

use std::time::Duration;

use anyhow::{Context, Result};
use cri_conformance::cases::{finish, logged_output};
use cri_conformance::client::{CallResult, Cri, named};
use cri_conformance::images::{Image, WASI_DEMO_APP, WASI_DEMO_APP_ARTIFACT};
use cri_conformance::pod::{ContainerSpec, Pod};
use k8s_cri::v1::{ContainerState, ImageSpec, PullImageRequest, RemoveImageRequest};
use shim_conformance::registry::Registry;

/// A pull unpacks the image; the first of a run may also wait for containerd's content store.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// One image the registry serves, and what running it prints.
struct Served {
    repository: &'static str,
    image: &'static Image,
    args: &'static [&'static str],
    stdout: &'static str,
    /// A Wasm OCI artifact (its layer is the module, not a tar).
    artifact: bool,
}

const SERVED: [Served; 2] = [
    Served {
        repository: "wasm/wasi-demo-app",
        image: &WASI_DEMO_APP,
        args: &["echo", "pulled", "from", "a", "registry"],
        stdout: "pulled from a registry\n",
        artifact: false,
    },
    Served {
        repository: "wasm/wasi-demo-app-artifact",
        image: &WASI_DEMO_APP_ARTIFACT,
        // No args: the artifact names no entry point, so its one module runs.
        args: &[],
        stdout: "hello from wasi-demo-app\n",
        artifact: true,
    },
];

fn containerd_version() -> String {
    std::env::var("WASM_SHIMS_CONTAINERD_VERSION").unwrap_or_default()
}

fn image_spec(reference: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: reference.to_owned(),
        ..Default::default()
    })
}

fn pull(cri: &mut Cri, reference: &str) -> CallResult<String> {
    let request = PullImageRequest {
        image: image_spec(reference),
        auth: None,
        sandbox_config: None,
    };
    cri.image(
        PULL_TIMEOUT,
        |mut c| async move { c.pull_image(request).await },
    )
    .map(|response| response.image_ref)
}

fn remove(cri: &mut Cri, reference: &str) -> Result<()> {
    let request = RemoveImageRequest {
        image: image_spec(reference),
    };
    named(
        &format!("RemoveImage {reference}"),
        cri.image(PULL_TIMEOUT, |mut c| async move {
            c.remove_image(request).await
        }),
    )?;
    Ok(())
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn pods_run_wasm_images_pulled_from_a_registry() -> Result<()> {
    let images: Vec<_> = SERVED.iter().map(|s| (s.repository, s.image)).collect();
    let registry = Registry::serve(&images)?;
    let version = containerd_version();
    let mut pod = Pod::run("pulled", "wasmtime")?;
    let mut failures = Vec::new();
    let mut containers = Vec::new();
    for served in &SERVED {
        let reference = registry.reference(served.repository, served.image);
        let pulled = pull(pod.cri(), &reference);
        let manifest = format!("/v2/{}/manifests/", served.repository);
        if !registry.requests().iter().any(|r| r.contains(&manifest)) {
            failures.push(format!(
                "{reference}: containerd never asked the registry for the manifest; requests: {:?}",
                registry.requests()
            ));
            continue;
        }
        if served.artifact && version.starts_with("1.6.") {
            // 1.6 unpacks every layer as a tar while pulling.
            match pulled {
                Ok(_) => failures.push(format!(
                    "containerd {version} pulled and unpacked the Wasm artifact {reference}"
                )),
                Err(status) if status.message().contains("mismatched image rootfs") => {}
                Err(status) => failures.push(format!(
                    "containerd {version} refused the artifact {reference} otherwise: {status}"
                )),
            }
            continue;
        }
        if let Err(status) = pulled {
            failures.push(format!("PullImage {reference}: {status}"));
            continue;
        }
        let name = served.repository.replace('/', "-");
        let spec = ContainerSpec::pulled(&name, &reference, served.args);
        let created = pod.create_container(&spec);
        let id = created.with_context(|| format!("CreateContainer of {reference}"))?;
        containers.push(id.clone());
        pod.start_container(&id)?;
        let status = pod.wait_for_state(&id, ContainerState::ContainerExited, EXIT_TIMEOUT)?;
        let (stdout, stderr) = logged_output(&pod.log_path(&name))?;
        if status.exit_code != 0 || stdout != served.stdout {
            failures.push(format!(
                "{reference}: exit code {} ({}), stdout {stdout:?} (expected {:?}), stderr {stderr:?}",
                status.exit_code, status.message, served.stdout
            ));
        }
    }
    let teardown = finish(pod, &containers, failures);
    // The pulled images go too (a failed pull left none: NotFound is no error for RemoveImage).
    let mut cri = Cri::connect(&shim_conformance::environment::containerd().address)?;
    for served in &SERVED {
        remove(
            &mut cri,
            &registry.reference(served.repository, served.image),
        )?;
    }
    teardown
}
