//! A blocking CRI v1 client on containerd's socket: the RuntimeService and ImageService the
//! kubelet talks to, with a deadline on every call.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Deadline for one call that has no timeout of its own; RunPodSandbox and CreateContainer
/// start shims and unpack images, which is the slowest.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A CRI client for one test; each test makes its own (they run on parallel threads).
pub struct Cri {
    runtime: tokio::runtime::Runtime,
    runtime_service: RuntimeServiceClient<Channel>,
    image_service: ImageServiceClient<Channel>,
}

/// How a CRI call failed: the gRPC status, so that tests can tell NotFound from the rest.
pub type CallResult<T> = std::result::Result<T, tonic::Status>;

impl Cri {
    /// Connects to the CRI plugin of the containerd listening on `socket`.
    pub fn connect(socket: &Path) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a tokio runtime for the CRI client")?;
        let path = socket.to_path_buf();
        let channel = runtime
            .block_on(async {
                // The URI is required by tonic but unused: the connector dials the socket.
                let endpoint =
                    Endpoint::from_static("http://localhost").connect_timeout(CALL_TIMEOUT);
                tokio::time::timeout(
                    CALL_TIMEOUT,
                    endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path: PathBuf = path.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                        }
                    })),
                )
                .await
            })
            .map_err(|_| anyhow!("connecting to CRI at {} timed out", socket.display()))?
            .with_context(|| format!("cannot connect to CRI at {}", socket.display()))?;
        Ok(Self {
            runtime,
            runtime_service: RuntimeServiceClient::new(channel.clone()),
            image_service: ImageServiceClient::new(channel),
        })
    }

    /// Runs one RuntimeService call to completion, within `timeout`.
    pub fn runtime<T, F, Fut>(&mut self, timeout: Duration, call: F) -> CallResult<T>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = CallResult<tonic::Response<T>>>,
    {
        let client = self.runtime_service.clone();
        Self::finish(&self.runtime, timeout, call(client))
    }

    /// Runs one ImageService call to completion, within `timeout`.
    pub fn image<T, F, Fut>(&mut self, timeout: Duration, call: F) -> CallResult<T>
    where
        F: FnOnce(ImageServiceClient<Channel>) -> Fut,
        Fut: Future<Output = CallResult<tonic::Response<T>>>,
    {
        let client = self.image_service.clone();
        Self::finish(&self.runtime, timeout, call(client))
    }

    fn finish<T>(
        runtime: &tokio::runtime::Runtime,
        timeout: Duration,
        call: impl Future<Output = CallResult<tonic::Response<T>>>,
    ) -> CallResult<T> {
        runtime.block_on(async {
            match tokio::time::timeout(timeout, call).await {
                Ok(result) => result.map(tonic::Response::into_inner),
                Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                    "no answer within {timeout:?} (client-side deadline)"
                ))),
            }
        })
    }
}

/// Turns a failed call into an error that names the call.
pub fn named<T>(what: &str, result: CallResult<T>) -> Result<T> {
    result.map_err(|status| {
        anyhow!(
            "CRI {what} failed: {:?}: {}",
            status.code(),
            status.message()
        )
    })
}
