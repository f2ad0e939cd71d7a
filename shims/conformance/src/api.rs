//! containerd's gRPC API, for what `ctr` cannot do: a spec that ctr would not write
//! (not UTF-8, no process), a task that is created but not started, process args changed
//! between two tasks of one container.

use std::future::Future;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::{
    Container, CreateTaskRequest, DeleteContainerRequest, DeleteTaskRequest, GetContainerRequest,
    GetRequest, StartRequest, UpdateContainerRequest, WaitRequest,
};
use containerd_client::tonic::Request;
use containerd_client::types::v1::Status as ProcessStatus;
use containerd_client::{Client, with_namespace};
use prost_types::{Any, FieldMask};

use crate::environment::containerd;

/// The type URL containerd gives OCI runtime specs (the Any holds the JSON bytes).
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Deadline for one API call; Create starts a shim, which is the slowest.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking wrapper around containerd's gRPC client, for use from tests.
pub struct Api {
    runtime: tokio::runtime::Runtime,
    client: Client,
    namespace: String,
}

/// A task's process as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessState {
    pub pid: u32,
    pub status: ProcessStatus,
}

impl Api {
    pub fn connect() -> Result<Self> {
        let env = containerd();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a tokio runtime for the containerd client")?;
        let client = runtime
            .block_on(async {
                tokio::time::timeout(CALL_TIMEOUT, Client::from_path(&env.address)).await
            })
            .map_err(|_| anyhow!("connecting to {} timed out", env.address.display()))?
            .with_context(|| {
                format!("cannot connect to containerd at {}", env.address.display())
            })?;
        Ok(Self {
            runtime,
            client,
            namespace: env.namespace.clone(),
        })
    }

    fn call<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T> {
        self.runtime.block_on(async {
            match tokio::time::timeout(CALL_TIMEOUT, call).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => bail!("{what}: {e}"),
                Err(_) => bail!("{what}: no answer within {CALL_TIMEOUT:?}"),
            }
        })
    }

    fn get_container(&self, id: &str) -> Result<Container> {
        let request = with_namespace!(GetContainerRequest { id: id.to_owned() }, self.namespace);
        let mut client = self.client.containers();
        self.call(&format!("get container {id}"), client.get(request))?
            .into_inner()
            .container
            .ok_or_else(|| anyhow!("containerd returned no container for {id}"))
    }

    /// Container `id`'s spec as containerd stores it (JSON bytes).
    pub fn spec(&self, id: &str) -> Result<Vec<u8>> {
        self.get_container(id)?
            .spec
            .map(|any| any.value)
            .ok_or_else(|| anyhow!("container {id} has no spec"))
    }

    /// Replaces container `id`'s spec with `spec`, stored verbatim; the next task gets it
    /// as its bundle's config.json.
    pub fn set_spec(&self, id: &str, spec: Vec<u8>) -> Result<()> {
        let mut container = self.get_container(id)?;
        container.spec = Some(Any {
            type_url: SPEC_TYPE_URL.to_owned(),
            value: spec,
        });
        let request = with_namespace!(
            UpdateContainerRequest {
                container: Some(container),
                update_mask: Some(FieldMask {
                    paths: vec!["spec".to_owned()],
                }),
            },
            self.namespace
        );
        let mut client = self.client.containers();
        self.call(&format!("update container {id}"), client.update(request))?;
        Ok(())
    }

    /// Edits container `id`'s spec as JSON.
    pub fn edit_spec(&self, id: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Result<()> {
        let mut spec: serde_json::Value = serde_json::from_slice(&self.spec(id)?)
            .with_context(|| format!("container {id}'s spec is not JSON"))?;
        edit(&mut spec);
        self.set_spec(id, serde_json::to_vec(&spec)?)
    }

    /// Replaces `process.args` in container `id`'s spec; the next task runs the new args on
    /// the same rootfs snapshot.
    pub fn set_process_args(&self, id: &str, args: &[&str]) -> Result<()> {
        self.edit_spec(id, |spec| spec["process"]["args"] = serde_json::json!(args))
    }

    /// Creates (without starting) the task of container `id`, on the container's snapshot
    /// if it has one, with no stdio. Returns the task's pid.
    pub fn create_task(&self, id: &str) -> Result<u32> {
        let container = self.get_container(id)?;
        let rootfs = if container.snapshot_key.is_empty() {
            Vec::new()
        } else {
            let request = with_namespace!(
                MountsRequest {
                    snapshotter: container.snapshotter.clone(),
                    key: container.snapshot_key.clone(),
                },
                self.namespace
            );
            let mut snapshots = self.client.snapshots();
            self.call(
                &format!("get the mounts of snapshot {}", container.snapshot_key),
                snapshots.mounts(request),
            )?
            .into_inner()
            .mounts
        };
        let request = with_namespace!(
            CreateTaskRequest {
                container_id: id.to_owned(),
                rootfs,
                ..Default::default()
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(&format!("create task {id}"), tasks.create(request))?
            .into_inner()
            .pid)
    }

    /// The task's init process as containerd reports it.
    pub fn task_state(&self, id: &str) -> Result<ProcessState> {
        let request = with_namespace!(
            GetRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        let process = self
            .call(&format!("get task {id}"), tasks.get(request))?
            .into_inner()
            .process
            .ok_or_else(|| anyhow!("containerd returned no process for task {id}"))?;
        Ok(ProcessState {
            pid: process.pid,
            status: ProcessStatus::try_from(process.status).unwrap_or(ProcessStatus::Unknown),
        })
    }

    pub fn start_task(&self, id: &str) -> Result<u32> {
        let request = with_namespace!(
            StartRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(&format!("start task {id}"), tasks.start(request))?
            .into_inner()
            .pid)
    }

    /// Waits for the task to exit and returns its exit status.
    pub fn wait_task(&self, id: &str) -> Result<u32> {
        let request = with_namespace!(
            WaitRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(&format!("wait for task {id}"), tasks.wait(request))?
            .into_inner()
            .exit_status)
    }

    /// Deletes the (stopped or created) task; returns its exit status.
    pub fn delete_task(&self, id: &str) -> Result<u32> {
        let request = with_namespace!(
            DeleteTaskRequest {
                container_id: id.to_owned(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(&format!("delete task {id}"), tasks.delete(request))?
            .into_inner()
            .exit_status)
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        let request = with_namespace!(DeleteContainerRequest { id: id.to_owned() }, self.namespace);
        let mut client = self.client.containers();
        self.call(&format!("delete container {id}"), client.delete(request))?;
        Ok(())
    }
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}
