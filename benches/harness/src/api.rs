//! containerd's gRPC API, to run containers without `ctr`: what a CRI-like client does
//! (container record, snapshot, task create/start/wait/delete), so that ctr's own cost can be
//! told apart from the runtime's, and so that many containers can start concurrently from one
//! process.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::snapshots::{
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetContainerRequest, KillRequest, StartRequest, WaitRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::{Code, Request};
use containerd_client::types::Mount;
use containerd_client::{Client, with_namespace};
use prost_types::Any;
use serde_json::Value;

use crate::containerd::NAMESPACE;

/// The type URL containerd gives OCI runtime specs (the Any holds the JSON bytes).
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Deadline for one call: a task create compiles the module, and with sixteen of them on two
/// cores that can take a while; only a hung shim should hit this.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

const SIGKILL: u32 = 9;

/// The annotation that puts a container into the shim of its pod's sandbox container.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// A connection to containerd, cheap to clone (one HTTP/2 channel underneath).
#[derive(Clone, Debug)]
pub struct Api {
    channel: Channel,
}

/// What a new container of an image needs: the spec ctr would write for it and the image's
/// unpacked snapshot (its chain id), taken once from a container ctr created.
#[derive(Clone, Debug)]
pub struct Template {
    image: String,
    spec: Value,
    snapshotter: String,
    /// The committed snapshot of the image's layers, parent of each container's rootfs.
    parent: String,
}

/// A container to create from a [`Template`].
#[derive(Debug)]
pub struct NewContainer<'a> {
    pub id: &'a str,
    pub runtime: &'a str,
    pub args: &'a [String],
    pub annotations: &'a [(&'a str, &'a str)],
}

impl Api {
    pub async fn connect(address: &Path) -> Result<Self> {
        let client = tokio::time::timeout(CALL_TIMEOUT, Client::from_path(address))
            .await
            .map_err(|_| anyhow!("connecting to {} timed out", address.display()))?
            .with_context(|| format!("cannot connect to containerd at {}", address.display()))?;
        Ok(Self {
            channel: client.channel(),
        })
    }

    fn client(&self) -> Client {
        Client::from(self.channel.clone())
    }

    /// The spec and snapshot parent of container `id` (created by `ctr container create`).
    pub async fn template(&self, id: &str) -> Result<Template> {
        let request = with_namespace!(GetContainerRequest { id: id.to_owned() }, NAMESPACE);
        let container = call(
            &format!("get container {id}"),
            self.client().containers().get(request),
        )
        .await?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("containerd returned no container for {id}"))?;
        let spec_bytes = container
            .spec
            .map(|any| any.value)
            .ok_or_else(|| anyhow!("container {id} has no spec"))?;
        let spec = serde_json::from_slice(&spec_bytes)
            .with_context(|| format!("the spec of container {id} is not JSON"))?;
        let request = with_namespace!(
            StatSnapshotRequest {
                snapshotter: container.snapshotter.clone(),
                key: container.snapshot_key.clone(),
            },
            NAMESPACE
        );
        let info = call(
            &format!("stat snapshot {}", container.snapshot_key),
            self.client().snapshots().stat(request),
        )
        .await?
        .into_inner()
        .info
        .ok_or_else(|| anyhow!("containerd returned no info on snapshot {id}"))?;
        if info.parent.is_empty() {
            bail!("snapshot {} of container {id} has no parent", info.name);
        }
        Ok(Template {
            image: container.image,
            spec,
            snapshotter: container.snapshotter,
            parent: info.parent,
        })
    }

    /// Creates the container record, its rootfs snapshot and its task (not started, no
    /// stdio). Returns the task's pid.
    pub async fn create(&self, template: &Template, new: &NewContainer<'_>) -> Result<u32> {
        let id = new.id;
        let mut spec = template.spec.clone();
        spec["process"]["args"] = serde_json::json!(new.args);
        // ctr names each container's cgroup after its namespace and id; so do we.
        spec["linux"]["cgroupsPath"] = Value::from(format!("/{NAMESPACE}/{id}"));
        for (key, value) in new.annotations {
            spec["annotations"][*key] = Value::from(*value);
        }
        let container = Container {
            id: id.to_owned(),
            image: template.image.clone(),
            runtime: Some(Runtime {
                name: new.runtime.to_owned(),
                options: None,
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE_URL.to_owned(),
                value: serde_json::to_vec(&spec)?,
            }),
            snapshotter: template.snapshotter.clone(),
            // The record references the snapshot before it exists, so the garbage collector
            // never sees it unreferenced.
            snapshot_key: id.to_owned(),
            ..Default::default()
        };
        let request = with_namespace!(
            CreateContainerRequest {
                container: Some(container)
            },
            NAMESPACE
        );
        call(
            &format!("create container {id}"),
            self.client().containers().create(request),
        )
        .await?;
        let request = with_namespace!(
            PrepareSnapshotRequest {
                snapshotter: template.snapshotter.clone(),
                key: id.to_owned(),
                parent: template.parent.clone(),
                labels: HashMap::new(),
            },
            NAMESPACE
        );
        let rootfs: Vec<Mount> = call(
            &format!("prepare the rootfs snapshot of {id}"),
            self.client().snapshots().prepare(request),
        )
        .await?
        .into_inner()
        .mounts;
        let request = with_namespace!(
            CreateTaskRequest {
                container_id: id.to_owned(),
                rootfs,
                ..Default::default()
            },
            NAMESPACE
        );
        Ok(call(
            &format!("create task {id} ({})", new.runtime),
            self.client().tasks().create(request),
        )
        .await?
        .into_inner()
        .pid)
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        let request = with_namespace!(
            StartRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            },
            NAMESPACE
        );
        call(
            &format!("start task {id}"),
            self.client().tasks().start(request),
        )
        .await?;
        Ok(())
    }

    /// Waits for the task to exit; returns its exit status.
    pub async fn wait(&self, id: &str) -> Result<u32> {
        let request = with_namespace!(
            WaitRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            },
            NAMESPACE
        );
        Ok(call(
            &format!("wait for task {id}"),
            self.client().tasks().wait(request),
        )
        .await?
        .into_inner()
        .exit_status)
    }

    /// Creates, starts and waits for a container, removes it, and fails unless it exited 0:
    /// the API counterpart of `ctr run --rm`.
    pub async fn run_to_exit(&self, template: &Template, new: &NewContainer<'_>) -> Result<()> {
        let outcome = async {
            self.create(template, new).await?;
            self.start(new.id).await?;
            self.wait(new.id).await
        }
        .await;
        let exit_status = match outcome {
            Ok(status) => status,
            Err(e) => {
                // Best effort: the first error is the one to report.
                let _ = self.remove(template, new.id).await;
                return Err(e);
            }
        };
        self.delete_stopped(template, new.id).await?;
        if exit_status != 0 {
            bail!(
                "container {} ({}) exited with status {exit_status}",
                new.id,
                new.runtime
            );
        }
        Ok(())
    }

    /// Removes container `id` in whatever state it is: kills and deletes its task, then its
    /// snapshot and record. Parts already gone are skipped.
    pub async fn remove(&self, template: &Template, id: &str) -> Result<()> {
        let kill = with_namespace!(
            KillRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
                signal: SIGKILL,
                all: false,
            },
            NAMESPACE
        );
        // A task that has exited answers NOT_FOUND: nothing to kill.
        let killed = allow_not_found(
            call(&format!("kill task {id}"), self.client().tasks().kill(kill)).await,
        )?;
        if killed.is_some() {
            self.wait(id).await?;
        }
        self.delete_stopped(template, id).await
    }

    /// Deletes the (exited) task of container `id`, then its snapshot and record; parts
    /// already gone are skipped.
    pub async fn delete_stopped(&self, template: &Template, id: &str) -> Result<()> {
        let delete = with_namespace!(
            DeleteTaskRequest {
                container_id: id.to_owned()
            },
            NAMESPACE
        );
        allow_not_found(
            call(
                &format!("delete task {id}"),
                self.client().tasks().delete(delete),
            )
            .await,
        )?;
        let request = with_namespace!(
            RemoveSnapshotRequest {
                snapshotter: template.snapshotter.clone(),
                key: id.to_owned(),
            },
            NAMESPACE
        );
        allow_not_found(
            call(
                &format!("remove snapshot {id}"),
                self.client().snapshots().remove(request),
            )
            .await,
        )?;
        let request = with_namespace!(DeleteContainerRequest { id: id.to_owned() }, NAMESPACE);
        allow_not_found(
            call(
                &format!("delete container {id}"),
                self.client().containers().delete(request),
            )
            .await,
        )?;
        Ok(())
    }
}

/// An error of [`call`] that carries containerd's status code.
#[derive(Debug)]
struct CallError {
    what: String,
    status: containerd_client::tonic::Status,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} ({:?})",
            self.what,
            self.status.message(),
            self.status.code()
        )
    }
}

impl std::error::Error for CallError {}

async fn call<T>(
    what: &str,
    request: impl Future<Output = Result<T, containerd_client::tonic::Status>>,
) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(status)) => Err(CallError {
            what: what.to_owned(),
            status,
        }
        .into()),
        Err(_) => bail!("{what}: no answer within {CALL_TIMEOUT:?}"),
    }
}

/// `Ok(None)` for a NOT_FOUND answer.
fn allow_not_found<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) => match e.downcast_ref::<CallError>() {
            Some(call) if call.status.code() == Code::NotFound => Ok(None),
            _ => Err(e),
        },
    }
}
