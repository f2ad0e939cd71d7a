//! A read-only OCI registry for the tests: the pull side of the distribution spec, serving
//! test images from their tarballs over plain HTTP on 127.0.0.1 in containerd's network
//! namespace, so that CRI's PullImage (and `docker pull`) take them as a node takes images
//! from a real registry, through containerd's resolver, fetcher and unpacker.
//!
//! containerd finds it through a `hosts.toml` in its registry `config_path`
//! (`WASM_SHIMS_REGISTRY_HOSTS_DIR`, written by scripts/containerd.sh), which it reads at
//! every pull; the file goes when the registry does. Every request is recorded, so a test can
//! tell that an image really came from here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::http::listen_loopback;
use crate::images::TestImage;

const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What the registry holds: tags and blobs (manifests are blobs too, by digest).
#[derive(Default)]
struct Content {
    /// (repository, tag) -> the digest of the manifest or index the tag names.
    tags: HashMap<(String, String), String>,
    /// digest -> bytes.
    blobs: HashMap<String, Bytes>,
    /// digest -> media type, for manifests and indexes (from the descriptors naming them).
    manifest_types: HashMap<String, String>,
}

/// A running registry; stopped, and its `hosts.toml` removed, when dropped.
pub struct Registry {
    port: u16,
    hosts_dir: PathBuf,
    requests: Arc<Mutex<Vec<String>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Registry {
    /// Serves each `(repository, image)`: the image's tarball (its OCI layout) under that
    /// repository, with the tag of the image's own reference.
    pub fn serve(images: &[(&str, &TestImage)]) -> Result<Self> {
        let mut content = Content::default();
        for (repository, image) in images {
            content
                .add(repository, tag_of(image.reference), &image.archive()?)
                .with_context(|| format!("cannot serve {} as {repository}", image.reference))?;
        }
        let listener = listen_loopback()?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_io()
            .build()
            .context("start the registry's runtime")?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let content = Arc::new(content);
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, content, Arc::clone(&requests)));
        let registry = Self {
            port,
            hosts_dir: hosts_dir()?.join(format!("127.0.0.1:{port}")),
            requests,
            runtime: Some(runtime),
        };
        registry.write_hosts_toml()?;
        Ok(registry)
    }

    /// `127.0.0.1:PORT/REPOSITORY:TAG`, the reference to pull.
    pub fn reference(&self, repository: &str, image: &TestImage) -> String {
        format!(
            "127.0.0.1:{}/{repository}:{}",
            self.port,
            tag_of(image.reference)
        )
    }

    /// Every request so far, as `METHOD PATH`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("registry request log").clone()
    }

    /// Plain HTTP for this host, for pulls and resolves (containerd would try HTTPS first).
    fn write_hosts_toml(&self) -> Result<()> {
        let server = format!("http://127.0.0.1:{}", self.port);
        std::fs::create_dir_all(&self.hosts_dir)
            .with_context(|| format!("create {}", self.hosts_dir.display()))?;
        let file = self.hosts_dir.join("hosts.toml");
        std::fs::write(
            &file,
            format!(
                "server = \"{server}\"\n\n[host.\"{server}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .with_context(|| format!("write {}", file.display()))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = std::fs::remove_dir_all(&self.hosts_dir);
    }
}

/// The registry hosts directory of the containerd under test.
fn hosts_dir() -> Result<PathBuf> {
    std::env::var_os("WASM_SHIMS_REGISTRY_HOSTS_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow!(
                "WASM_SHIMS_REGISTRY_HOSTS_DIR is not set: run the tests under scripts/containerd.sh run (make test does)"
            )
        })
}

fn tag_of(reference: &str) -> &str {
    reference
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or("latest", |(_, tag)| tag)
}

impl Content {
    /// Takes the blobs of an OCI layout tarball and tags what its `index.json` names.
    fn add(&mut self, repository: &str, tag: &str, tarball: &[u8]) -> Result<()> {
        let mut index = None;
        let mut archive = tar::Archive::new(tarball);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            if path == "index.json" {
                index = Some(bytes);
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                self.blobs
                    .insert(format!("sha256:{hex}"), Bytes::from(bytes));
            }
        }
        let index: Value =
            serde_json::from_slice(&index.context("the tarball has no index.json")?)?;
        let Some(top) = index["manifests"].get(0) else {
            bail!("index.json names no manifest");
        };
        let digest = self.note_manifest(top)?;
        self.tags
            .insert((repository.to_owned(), tag.to_owned()), digest);
        Ok(())
    }

    /// Records a manifest descriptor's media type, and those of an index's manifests.
    fn note_manifest(&mut self, descriptor: &Value) -> Result<String> {
        let (Some(digest), Some(media_type)) = (
            descriptor["digest"].as_str(),
            descriptor["mediaType"].as_str(),
        ) else {
            bail!("a manifest descriptor without digest or mediaType: {descriptor}");
        };
        let blob = self
            .blobs
            .get(digest)
            .with_context(|| format!("manifest {digest} is not in the tarball"))?
            .clone();
        if INDEX_MEDIA_TYPES.contains(&media_type) {
            let index: Value = serde_json::from_slice(&blob)?;
            for child in index["manifests"].as_array().into_iter().flatten() {
                self.note_manifest(child)?;
            }
        }
        self.manifest_types
            .insert(digest.to_owned(), media_type.to_owned());
        Ok(digest.to_owned())
    }

    /// The answer to one request of the distribution spec's pull side.
    fn answer(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "read-only registry",
            );
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", path);
        };
        if rest.is_empty() {
            return blob_response(Bytes::from_static(b"{}"), "application/json", None);
        }
        if let Some((repository, reference)) = rest.split_once("/manifests/") {
            let digest = if reference.starts_with("sha256:") {
                Some(reference.to_owned())
            } else {
                self.tags
                    .get(&(repository.to_owned(), reference.to_owned()))
                    .cloned()
            };
            let found = digest.and_then(|digest| {
                let media_type = self.manifest_types.get(&digest)?;
                let blob = self.blobs.get(&digest)?;
                Some(blob_response(blob.clone(), media_type, Some(&digest)))
            });
            return found.unwrap_or_else(|| error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", rest));
        }
        if let Some((_, digest)) = rest.split_once("/blobs/") {
            return match self.blobs.get(digest) {
                Some(blob) => blob_response(blob.clone(), "application/octet-stream", Some(digest)),
                None => error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", rest),
            };
        }
        error(StatusCode::NOT_FOUND, "NAME_UNKNOWN", rest)
    }
}

/// A body with its type and digest. For HEAD hyper sends the headers alone, with the body's
/// length as Content-Length, which is what a HEAD of the distribution spec answers.
fn blob_response(body: Bytes, media_type: &str, digest: Option<&str>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(media_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Some(value) = digest.and_then(|d| HeaderValue::from_str(d).ok()) {
        headers.insert("docker-content-digest", value);
    }
    response
}

/// An error in the distribution spec's JSON shape.
fn error(status: StatusCode, code: &str, detail: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": detail }] });
    let mut response = blob_response(Bytes::from(body.to_string()), "application/json", None);
    *response.status_mut() = status;
    response
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    content: Arc<Content>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let content = Arc::clone(&content);
        let requests = Arc::clone(&requests);
        let service = service_fn(move |request: Request<Incoming>| {
            let path = request.uri().path().to_owned();
            requests
                .lock()
                .expect("registry request log")
                .push(format!("{} {path}", request.method()));
            let response = content.answer(request.method(), &path);
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_come_from_the_reference() {
        assert_eq!(tag_of("docker.io/library/wasi-demo-app:latest"), "latest");
        assert_eq!(tag_of("127.0.0.1:5000/app:v2"), "v2");
        assert_eq!(tag_of("127.0.0.1:5000/app"), "latest");
    }

    fn body(response: Response<Full<Bytes>>) -> Bytes {
        use http_body_util::BodyExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        match runtime.block_on(response.into_body().collect()) {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        }
    }

    fn header<'a>(response: &'a Response<Full<Bytes>>, name: &str) -> &'a str {
        response.headers()[name].to_str().expect("an ASCII header")
    }

    #[test]
    fn serves_what_a_layout_tarball_holds() -> Result<()> {
        let archive = image_builder::ImageBuilder::new("docker.io/library/served:v1")
            .platform("wasip1", "wasm")
            .file("hello.txt", "hello", 0o644)
            .build()?;
        let mut content = Content::default();
        content.add("tests/served", "v1", &archive.to_tar()?)?;
        let get = |path: &str| content.answer(&Method::GET, path);

        assert_eq!(get("/v2/").status(), StatusCode::OK);
        let manifest = get("/v2/tests/served/manifests/v1");
        assert_eq!(manifest.status(), StatusCode::OK);
        let digest = header(&manifest, "docker-content-digest").to_owned();
        assert_eq!(digest, archive.manifest_digest());
        assert_eq!(
            header(&manifest, "content-type"),
            "application/vnd.oci.image.manifest.v1+json"
        );
        let manifest: Value = serde_json::from_slice(&body(manifest))?;
        let by_digest = get(&format!("/v2/tests/served/manifests/{digest}"));
        assert_eq!(by_digest.status(), StatusCode::OK);
        let layer = manifest["layers"][0]["digest"].as_str().expect("a layer");
        let blob = get(&format!("/v2/tests/served/blobs/{layer}"));
        assert_eq!(blob.status(), StatusCode::OK);
        assert_eq!(
            format!(
                "sha256:{:x}",
                <sha2::Sha256 as sha2::Digest>::digest(body(blob))
            ),
            layer
        );

        for missing in [
            "/v2/tests/served/manifests/v2",
            "/v2/tests/other/manifests/v1",
            "/v2/tests/served/blobs/sha256:00",
            "/elsewhere",
        ] {
            assert_eq!(get(missing).status(), StatusCode::NOT_FOUND, "{missing}");
        }
        assert_eq!(
            content
                .answer(&Method::PUT, "/v2/tests/served/manifests/v1")
                .status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        Ok(())
    }
}
