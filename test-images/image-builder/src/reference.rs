//! Image names: the full, normalized reference (what containerd and Docker list) and the tag
//! (what OCI layouts carry in `org.opencontainers.image.ref.name`).

use anyhow::{Context, Result, bail};
use oci_spec::distribution::Reference;

/// The tag used when a name has none, as `docker` and `ctr` do.
const DEFAULT_TAG: &str = "latest";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ImageName {
    /// e.g. `docker.io/library/wasi-demo-app:latest`
    pub(crate) full: String,
    /// e.g. `latest`
    pub(crate) tag: String,
}

/// Normalizes `wasi-demo-app` to `docker.io/library/wasi-demo-app:latest`; a digest reference
/// is refused because an archive names its image by tag.
pub(crate) fn parse_image_name(name: &str) -> Result<ImageName> {
    let reference: Reference = name
        .parse()
        .with_context(|| format!("invalid image name {name:?}"))?;
    if reference.digest().is_some() {
        bail!("image name {name:?} must be a tag, not a digest");
    }
    let tag = reference.tag().unwrap_or(DEFAULT_TAG).to_owned();
    Ok(ImageName {
        full: format!("{}/{}:{tag}", reference.registry(), reference.repository()),
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            (
                "wasi-demo-app",
                "docker.io/library/wasi-demo-app:latest",
                "latest",
            ),
            ("docker.io/library/x:v1", "docker.io/library/x:v1", "v1"),
            ("ghcr.io/org/app:1.0", "ghcr.io/org/app:1.0", "1.0"),
            ("localhost:5000/a/b", "localhost:5000/a/b:latest", "latest"),
            ("user/app:t", "docker.io/user/app:t", "t"),
        ];
        for (name, full, tag) in cases {
            let expected = ImageName {
                full: full.into(),
                tag: tag.into(),
            };
            assert_eq!(parse_image_name(name).unwrap(), expected, "{name}");
        }
    }

    #[test]
    fn rejects_digests_and_garbage() {
        let digest = format!("app@sha256:{}", "a".repeat(64));
        for bad in [digest.as_str(), "app/UPPER", "", "a b"] {
            assert!(parse_image_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
