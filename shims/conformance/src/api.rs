//! containerd's gRPC API, for what `ctr` cannot do: a spec that ctr would not write
//! (not UTF-8, no process), a task that is created but not started, process args changed
//! between two tasks of one container, events as a subscriber receives them.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::{
    CloseIoRequest, Container, CreateTaskRequest, DeleteContainerRequest, DeleteProcessRequest,
    DeleteTaskRequest, ExecProcessRequest, GetContainerRequest, GetRequest, PublishRequest,
    StartRequest, SubscribeRequest, UpdateContainerRequest, UpdateTaskRequest, WaitRequest,
};
use containerd_client::tonic::{Request, Streaming};
use containerd_client::types::Envelope;
use containerd_client::types::v1::Status as ProcessStatus;
use containerd_client::{Client, with_namespace};
use prost_types::{Any, FieldMask};

use crate::environment::containerd;

/// The type URL containerd gives OCI runtime specs (the Any holds the JSON bytes).
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// The type URL of the runtime spec's Process (the Any holds the JSON bytes).
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// The type URL of the runtime spec's LinuxResources (the Any holds the JSON bytes).
const RESOURCES_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// Deadline for one API call; Create starts a shim, which is the slowest.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Topic of the marker events [`Api::subscribe`] publishes: containerd answers a Subscribe
/// call only when it passes on the first event, so the markers are what make it answer.
const SUBSCRIBED_TOPIC: &str = "/conformance/subscribed";

/// How often [`Api::subscribe`] publishes a marker until its subscription answers (a marker
/// published before containerd registered the subscription is not passed on).
const MARKER_INTERVAL: Duration = Duration::from_millis(100);

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
        self.create_task_with_stdio(id, ["", "", ""])
    }

    /// Like [`Api::create_task`], with the task's stdin, stdout and stderr at these paths
    /// (FIFOs the caller made; an empty path means none), as ctr and CRI pass them.
    pub fn create_task_with_stdio(&self, id: &str, stdio: [&str; 3]) -> Result<u32> {
        self.create_task_with_io(id, stdio, false)
    }

    /// Like [`Api::create_task_with_stdio`]; with `terminal`, the process gets a
    /// pseudo-terminal (the spec must say `process.terminal` too) and stderr is unused.
    pub fn create_task_with_io(&self, id: &str, stdio: [&str; 3], terminal: bool) -> Result<u32> {
        self.create_task_with(id, stdio, terminal, None)
    }

    /// Like [`Api::create_task`], with runtime options in the request (as a client sends
    /// them, e.g. the runc options message with `SystemdCgroup`).
    pub fn create_task_with_options(&self, id: &str, options: Any) -> Result<u32> {
        self.create_task_with(id, ["", "", ""], false, Some(options))
    }

    fn create_task_with(
        &self,
        id: &str,
        [stdin, stdout, stderr]: [&str; 3],
        terminal: bool,
        options: Option<Any>,
    ) -> Result<u32> {
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
                stdin: stdin.to_owned(),
                stdout: stdout.to_owned(),
                stderr: stderr.to_owned(),
                terminal,
                options,
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
        self.start_process(id, "")
    }

    /// Starts the task's init process (`exec_id` empty) or exec process `exec_id`.
    pub fn start_process(&self, id: &str, exec_id: &str) -> Result<u32> {
        let request = with_namespace!(
            StartRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(
                &format!("start process {exec_id:?} of task {id}"),
                tasks.start(request),
            )?
            .into_inner()
            .pid)
    }

    /// Waits for the task to exit and returns its exit status.
    pub fn wait_task(&self, id: &str) -> Result<u32> {
        self.wait_process(id, "")
    }

    /// Waits for the init process (`exec_id` empty) or exec process `exec_id` to exit.
    pub fn wait_process(&self, id: &str, exec_id: &str) -> Result<u32> {
        let request = with_namespace!(
            WaitRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(
                &format!("wait for process {exec_id:?} of task {id}"),
                tasks.wait(request),
            )?
            .into_inner()
            .exit_status)
    }

    /// Adds exec process `exec_id` to the running task `id`: `process` is its OCI process
    /// spec; `stdio` are FIFOs the caller made (an empty path means none).
    pub fn exec_process(
        &self,
        id: &str,
        exec_id: &str,
        process: &serde_json::Value,
        [stdin, stdout, stderr]: [&str; 3],
    ) -> Result<()> {
        let request = with_namespace!(
            ExecProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
                stdin: stdin.to_owned(),
                stdout: stdout.to_owned(),
                stderr: stderr.to_owned(),
                terminal: false,
                spec: Some(Any {
                    type_url: PROCESS_TYPE_URL.to_owned(),
                    value: serde_json::to_vec(process)?,
                }),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        self.call(
            &format!("exec process {exec_id} in task {id}"),
            tasks.exec(request),
        )?;
        Ok(())
    }

    /// Deletes exec process `exec_id` (stopped); returns its exit status.
    pub fn delete_process(&self, id: &str, exec_id: &str) -> Result<u32> {
        let request = with_namespace!(
            DeleteProcessRequest {
                container_id: id.to_owned(),
                exec_id: exec_id.to_owned(),
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        Ok(self
            .call(
                &format!("delete exec process {exec_id} of task {id}"),
                tasks.delete_process(request),
            )?
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

    /// Applies new resources (the runtime spec's LinuxResources, as JSON) to the running
    /// task, as `docker update` does; ctr 1.6 has no such command.
    pub fn update_task(&self, id: &str, resources: &serde_json::Value) -> Result<()> {
        let request = with_namespace!(
            UpdateTaskRequest {
                container_id: id.to_owned(),
                resources: Some(Any {
                    type_url: RESOURCES_TYPE_URL.to_owned(),
                    value: serde_json::to_vec(resources)?,
                }),
                ..Default::default()
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        self.call(&format!("update task {id}"), tasks.update(request))?;
        Ok(())
    }

    /// Closes the task's stdin (CloseIO), as a client does at the end of its input.
    pub fn close_stdin(&self, id: &str) -> Result<()> {
        let request = with_namespace!(
            CloseIoRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
                stdin: true,
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        self.call(
            &format!("close the stdin of task {id}"),
            tasks.close_io(request),
        )?;
        Ok(())
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        let request = with_namespace!(DeleteContainerRequest { id: id.to_owned() }, self.namespace);
        let mut client = self.client.containers();
        self.call(&format!("delete container {id}"), client.delete(request))?;
        Ok(())
    }
}

impl Api {
    /// Subscribes to the test namespace's events whose topic matches the regular expression
    /// `topics`. Returns once containerd has registered the subscription, so that every
    /// event published later reaches it.
    pub fn subscribe(&self, topics: &str) -> Result<Subscription<'_>> {
        let namespace = &self.namespace;
        // Several filters match as alternatives; Rust's quoting of these plain ASCII
        // strings is the Go quoting containerd's filter syntax expects.
        let filters = vec![
            format!("namespace=={namespace},topic~={topics:?}"),
            format!("namespace=={namespace},topic=={SUBSCRIBED_TOPIC:?}"),
        ];
        let request = with_namespace!(SubscribeRequest { filters }, self.namespace);
        let mut events = self.client.events();
        let mut subscribing = self
            .runtime
            .spawn(async move { events.subscribe(request).await });
        let deadline = Instant::now() + CALL_TIMEOUT;
        let answer = loop {
            self.publish_marker()?;
            let waited = self
                .runtime
                .block_on(async { tokio::time::timeout(MARKER_INTERVAL, &mut subscribing).await });
            if let Ok(joined) = waited {
                break joined.context("the Subscribe call panicked")?;
            }
            if Instant::now() > deadline {
                subscribing.abort();
                bail!("subscribe to events {topics:?}: no answer within {CALL_TIMEOUT:?}");
            }
        };
        let stream = answer
            .map_err(|e| anyhow!("subscribe to events {topics:?}: {e}"))?
            .into_inner();
        Ok(Subscription { api: self, stream })
    }

    fn publish_marker(&self) -> Result<()> {
        let marker = Any {
            type_url: "google.protobuf.Empty".to_owned(),
            value: Vec::new(),
        };
        let request = with_namespace!(
            PublishRequest {
                topic: SUBSCRIBED_TOPIC.to_owned(),
                event: Some(marker),
            },
            self.namespace
        );
        let mut events = self.client.events();
        self.call(
            &format!("publish a marker event on {SUBSCRIBED_TOPIC}"),
            events.publish(request),
        )?;
        Ok(())
    }
}

/// Events of the test namespace, in the order containerd passes them on.
pub struct Subscription<'a> {
    api: &'a Api,
    stream: Streaming<Envelope>,
}

impl Subscription<'_> {
    /// The next event, or `None` if none comes within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Envelope>> {
        let Self { api, stream } = self;
        let deadline = tokio::time::Instant::now() + timeout;
        api.runtime.block_on(async {
            loop {
                match tokio::time::timeout_at(deadline, stream.message()).await {
                    Err(_) => return Ok(None),
                    Ok(Err(status)) => bail!("the event stream failed: {status}"),
                    Ok(Ok(None)) => bail!("containerd ended the event stream"),
                    Ok(Ok(Some(envelope))) if envelope.topic == SUBSCRIBED_TOPIC => {}
                    Ok(Ok(Some(envelope))) => return Ok(Some(envelope)),
                }
            }
        })
    }
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}
