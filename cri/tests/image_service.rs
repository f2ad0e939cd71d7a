//! The ImageService the kubelet asks before it creates a container (ImageStatus: is the image
//! there?) and for image garbage collection (ListImages): both report the test images that
//! the suite imported into the CRI namespace (none is ever pulled), Wasm and native, with
//! their reference as a repo tag, an id and a size; an image that is not there is no error
//! but no image.

use anyhow::{Context, Result, bail};
use cri_conformance::client::{CALL_TIMEOUT, Cri, named};
use cri_conformance::images::{
    Image, NATIVE_DEMO, PAUSE, TCP_ECHO, TCP_ECHO_NATIVE, WASI_DEMO_APP,
};
use k8s_cri::v1::{ImageSpec, ImageStatusRequest, ListImagesRequest};
use shim_conformance::environment::containerd;

const IMAGES: [&Image; 5] = [
    &WASI_DEMO_APP,
    &NATIVE_DEMO,
    &TCP_ECHO,
    &TCP_ECHO_NATIVE,
    &PAUSE,
];

fn spec(reference: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: reference.to_owned(),
        ..Default::default()
    })
}

fn image_status(cri: &mut Cri, reference: &str) -> Result<Option<k8s_cri::v1::Image>> {
    let request = ImageStatusRequest {
        image: spec(reference),
        verbose: false,
    };
    Ok(named(
        &format!("ImageStatus {reference}"),
        cri.image(CALL_TIMEOUT, |mut c| async move {
            c.image_status(request).await
        }),
    )?
    .image)
}

/// ListImages without a filter: containerd 1.6 ignores ListImages' filter (it answers every
/// image whatever the filter names), so the suite does not check it.
fn list_images(cri: &mut Cri) -> Result<Vec<k8s_cri::v1::Image>> {
    let request = ListImagesRequest { filter: None };
    Ok(named(
        "ListImages",
        cri.image(
            CALL_TIMEOUT,
            |mut c| async move { c.list_images(request).await },
        ),
    )?
    .images)
}

#[test]
#[ignore = "needs the private containerd: run make test"]
fn image_status_and_list_report_the_test_images() -> Result<()> {
    for image in IMAGES {
        image.ensure_imported()?;
    }
    let mut cri = Cri::connect(&containerd().address)?;
    let mut failures = Vec::new();
    let listed = list_images(&mut cri)?;
    for image in IMAGES {
        let reference = image.reference;
        match image_status(&mut cri, reference) {
            Ok(Some(status)) => {
                if !status.repo_tags.iter().any(|t| t == reference)
                    || !status.id.starts_with("sha256:")
                    || status.size == 0
                {
                    failures.push(format!(
                        "ImageStatus {reference}: expected repo tag {reference:?}, a sha256 id and \
                         a size; saw tags {:?}, id {:?}, size {}",
                        status.repo_tags, status.id, status.size
                    ));
                }
                // The same image in the list, by id; and by id, ImageStatus finds it too.
                match listed.iter().find(|i| i.id == status.id) {
                    Some(entry) if entry.repo_tags.iter().any(|t| t == reference) => {}
                    entry => failures.push(format!(
                        "ListImages: expected image {} with tag {reference:?}; saw {entry:?}",
                        status.id
                    )),
                }
                match image_status(&mut cri, &status.id) {
                    Ok(Some(by_id)) if by_id.id == status.id => {}
                    other => failures.push(format!(
                        "ImageStatus by id {}: expected that image; saw {other:?}",
                        status.id
                    )),
                }
            }
            Ok(None) => failures.push(format!(
                "ImageStatus {reference}: expected the imported image, saw none"
            )),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let absent = "docker.io/library/wasm-shims-never-imported:latest";
    match image_status(&mut cri, absent).context("ImageStatus of an absent image")? {
        None => {}
        Some(image) => failures.push(format!(
            "ImageStatus {absent}: expected no image (never imported); saw {image:?}"
        )),
    }
    if failures.is_empty() {
        return Ok(());
    }
    bail!(
        "{} check(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    )
}
