//! containerd's gRPC API, for what `ctr` cannot do. The suite needs it for a spec that ctr
//! would not write (not UTF-8, no process), a task that is created but not started, process
//! args changed between two tasks of one container, events as a subscriber receives them;
//! the benchmarks to run containers the way a CRI-like client does (container record,
//! snapshot, task create/start/wait/delete), without ctr's own cost, many at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::snapshots::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest, GetContainerRequest, GetRequest,
    KillRequest, PublishRequest, StartRequest, SubscribeRequest, UpdateContainerRequest,
    WaitRequest,
};
use containerd_client::tonic::{Code, Request, Status, Streaming};
use containerd_client::types::v1::Status as ProcessStatus;
use containerd_client::types::{Envelope, Mount};
use containerd_client::{Client, with_namespace};
use prost_types::{Any, FieldMask};
use serde_json::Value;

use crate::environment::{Endpoint, containerd};

/// The type URL containerd gives OCI runtime specs (the Any holds the JSON bytes).
const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// The type URL of the runtime spec's Process (the Any holds the JSON bytes).
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// Deadline for one API call unless [`Api::call_timeout`] says otherwise; Create starts a
/// shim, which is the slowest.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

const SIGKILL: u32 = 9;

/// Topic of the marker events [`Api::subscribe`] publishes: containerd answers a Subscribe
/// call only when it passes on the first event, so the markers are what make it answer.
const SUBSCRIBED_TOPIC: &str = "/conformance/subscribed";

/// How often [`Api::subscribe`] publishes a marker until its subscription answers (a marker
/// published before containerd registered the subscription is not passed on).
const MARKER_INTERVAL: Duration = Duration::from_millis(100);

/// A blocking wrapper around containerd's gRPC client for one namespace. Its calls may be
/// made from many threads at once (the benchmarks' parallel containers share one).
pub struct Api {
    /// Drives the calls, each blocked on by its caller's thread; one worker suffices, since
    /// the client only waits on containerd.
    runtime: Arc<tokio::runtime::Runtime>,
    client: Client,
    namespace: String,
    call_timeout: Duration,
}

/// What a new container of an image needs: the spec ctr would write for it and the image's
/// unpacked snapshot, taken once from a container ctr created ([`Api::template`]).
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

/// A task's process as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessState {
    pub pid: u32,
    pub status: ProcessStatus,
}

impl Api {
    /// Connects to the suite's containerd, in the suite's namespace.
    pub fn connect() -> Result<Self> {
        Self::connect_to(&containerd().endpoint())
    }

    pub fn connect_to(endpoint: &Endpoint) -> Result<Self> {
        let Endpoint { address, namespace } = endpoint;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("cannot start a tokio runtime for the containerd client")?;
        let client = runtime
            .block_on(async {
                tokio::time::timeout(CALL_TIMEOUT, Client::from_path(address)).await
            })
            .map_err(|_| anyhow!("connecting to {} timed out", address.display()))?
            .with_context(|| format!("cannot connect to containerd at {}", address.display()))?;
        Ok(Self {
            runtime: Arc::new(runtime),
            client,
            namespace: namespace.clone(),
            call_timeout: CALL_TIMEOUT,
        })
    }

    /// Gives every later call `timeout` to answer.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    fn call<T>(&self, what: &str, call: impl Future<Output = Result<T, Status>>) -> Result<T> {
        let timeout = self.call_timeout;
        self.runtime.block_on(async {
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(status)) => Err(CallError {
                    what: what.to_owned(),
                    status,
                }
                .into()),
                Err(_) => bail!("{what}: no answer within {timeout:?}"),
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
        self.create_task_with(id, stdio, None)
    }

    /// Like [`Api::create_task`], with runtime options in the request (as a client sends
    /// them, e.g. the runc options message with `SystemdCgroup`).
    pub fn create_task_with_options(&self, id: &str, options: Any) -> Result<u32> {
        self.create_task_with(id, ["", "", ""], Some(options))
    }

    fn create_task_with(
        &self,
        id: &str,
        [stdin, stdout, stderr]: [&str; 3],
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
        let request = CreateTaskRequest {
            container_id: id.to_owned(),
            rootfs,
            stdin: stdin.to_owned(),
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            options,
            ..Default::default()
        };
        self.create_task_from(request, &format!("create task {id}"))
    }

    fn create_task_from(&self, request: CreateTaskRequest, what: &str) -> Result<u32> {
        let request = with_namespace!(request, self.namespace);
        let mut tasks = self.client.tasks();
        Ok(self.call(what, tasks.create(request))?.into_inner().pid)
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

    /// Sends `signal` to the task's init process.
    pub fn kill_task(&self, id: &str, signal: u32) -> Result<()> {
        let request = with_namespace!(
            KillRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
                signal,
                all: false,
            },
            self.namespace
        );
        let mut tasks = self.client.tasks();
        self.call(&format!("kill task {id}"), tasks.kill(request))?;
        Ok(())
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        let request = with_namespace!(DeleteContainerRequest { id: id.to_owned() }, self.namespace);
        let mut client = self.client.containers();
        self.call(&format!("delete container {id}"), client.delete(request))?;
        Ok(())
    }
}

/// Containers made from a [`Template`], as a CRI-like client makes them.
impl Api {
    /// The spec and snapshot parent of container `id` (created by `ctr container create`).
    pub fn template(&self, id: &str) -> Result<Template> {
        let container = self.get_container(id)?;
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
            self.namespace
        );
        let mut snapshots = self.client.snapshots();
        let info = self
            .call(
                &format!("stat snapshot {}", container.snapshot_key),
                snapshots.stat(request),
            )?
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
    pub fn create(&self, template: &Template, new: &NewContainer<'_>) -> Result<u32> {
        let id = new.id;
        let mut spec = template.spec.clone();
        spec["process"]["args"] = serde_json::json!(new.args);
        // ctr names each container's cgroup after its namespace and id; so do we.
        spec["linux"]["cgroupsPath"] = Value::from(format!("/{}/{id}", self.namespace));
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
            self.namespace
        );
        let mut containers = self.client.containers();
        self.call(
            &format!("create container {id}"),
            containers.create(request),
        )?;
        let request = with_namespace!(
            PrepareSnapshotRequest {
                snapshotter: template.snapshotter.clone(),
                key: id.to_owned(),
                parent: template.parent.clone(),
                labels: HashMap::new(),
            },
            self.namespace
        );
        let mut snapshots = self.client.snapshots();
        let rootfs: Vec<Mount> = self
            .call(
                &format!("prepare the rootfs snapshot of {id}"),
                snapshots.prepare(request),
            )?
            .into_inner()
            .mounts;
        let request = CreateTaskRequest {
            container_id: id.to_owned(),
            rootfs,
            ..Default::default()
        };
        self.create_task_from(request, &format!("create task {id} ({})", new.runtime))
    }

    /// Creates, starts and waits for a container, removes it, and fails unless it exited 0:
    /// the API counterpart of `ctr run --rm`.
    pub fn run_to_exit(&self, template: &Template, new: &NewContainer<'_>) -> Result<()> {
        let outcome = self
            .create(template, new)
            .and_then(|_| self.start_task(new.id))
            .and_then(|_| self.wait_task(new.id));
        let exit_status = match outcome {
            Ok(status) => status,
            Err(e) => {
                // Best effort: the first error is the one to report.
                let _ = self.remove(template, new.id);
                return Err(e);
            }
        };
        self.delete_stopped(template, new.id)?;
        if exit_status != 0 {
            bail!(
                "container {} ({}) exited with status {exit_status}",
                new.id,
                new.runtime
            );
        }
        Ok(())
    }

    /// Removes container `id` of `template` in whatever state it is: kills and deletes its
    /// task, then its snapshot and record. Parts already gone are skipped.
    pub fn remove(&self, template: &Template, id: &str) -> Result<()> {
        // A task that has exited answers NOT_FOUND: nothing to kill.
        if allow_not_found(self.kill_task(id, SIGKILL))?.is_some() {
            self.wait_task(id)?;
        }
        self.delete_stopped(template, id)
    }

    /// Deletes the (exited) task of container `id` of `template`, then its snapshot and
    /// record; parts already gone are skipped.
    pub fn delete_stopped(&self, template: &Template, id: &str) -> Result<()> {
        allow_not_found(self.delete_task(id))?;
        let request = with_namespace!(
            RemoveSnapshotRequest {
                snapshotter: template.snapshotter.clone(),
                key: id.to_owned(),
            },
            self.namespace
        );
        let mut snapshots = self.client.snapshots();
        allow_not_found(self.call(&format!("remove snapshot {id}"), snapshots.remove(request)))?;
        allow_not_found(self.delete_container(id))?;
        Ok(())
    }
}

/// An error of a call, with containerd's status code (see [`allow_not_found`]).
#[derive(Debug)]
struct CallError {
    what: String,
    status: Status,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.status)
    }
}

impl std::error::Error for CallError {}

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
        let deadline = Instant::now() + self.call_timeout;
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
                bail!(
                    "subscribe to events {topics:?}: no answer within {:?}",
                    self.call_timeout
                );
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
