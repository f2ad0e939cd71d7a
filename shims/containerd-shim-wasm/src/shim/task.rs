//! The ttrpc Task service: each verb maps onto a [`Container`] method, or with an exec id onto
//! one of its exec processes. Verbs not supported answer UNIMPLEMENTED with a message.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use containerd_shim::api::{self, Status as ApiStatus};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::util::convert_to_any;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use log::{debug, error, info};

use crate::request::{CreateRequest, RootfsMount};
use crate::shim::container::Container;
use crate::shim::error::ContainerError;
use crate::shim::events::EventSink;
use crate::shim::exec::Exec;
use crate::shim::options::{self, RuntimeOptions};
use crate::shim::process::Process;
use crate::shim::reaper::Reaper;
use crate::shim::runtime::Runtime;
use crate::shim::stats;
use crate::stdio::StdioPaths;

/// The shim's Task service: the containers of one shim (one pod, or one container). Events go
/// to `S` (containerd's, or a recording sink in the unit tests).
pub struct TaskService<S: EventSink> {
    pub engine: String,
    pub namespace: String,
    pub debug: bool,
    pub events: S,
    pub reaper: Arc<Reaper>,
    pub runtime: Arc<dyn Runtime>,
    pub exit: Arc<ExitSignal>,
    pub containers: Mutex<HashMap<String, Arc<Container>>>,
    /// Ids whose Create is under way (taken under the `containers` lock): a second Create of
    /// the same id is refused instead of reaching the helper, which would take the first one's
    /// state for a crashed shim's and remove it.
    pub creating: Mutex<HashSet<String>>,
    /// Held, shared, by each Kill while it runs, and exclusively by Shutdown: a kill's own
    /// effect (the last process exits, the client deletes the task, containerd asks the shim
    /// to shut down) must not end the shim before that Kill has answered.
    pub kills: RwLock<()>,
}

fn rpc_error(code: Code, message: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.into()))
}

impl From<ContainerError> for ttrpc::Error {
    fn from(e: ContainerError) -> Self {
        match e {
            ContainerError::Illegal(e) => rpc_error(Code::FAILED_PRECONDITION, e.to_string()),
            ContainerError::Deleted(_) | ContainerError::NotFound(_) => {
                rpc_error(Code::NOT_FOUND, e.to_string())
            }
            ContainerError::AlreadyExists(_) => rpc_error(Code::ALREADY_EXISTS, e.to_string()),
            ContainerError::Failed(e) => rpc_error(Code::UNKNOWN, format!("{e:#}")),
        }
    }
}

fn failed(e: anyhow::Error) -> ttrpc::Error {
    rpc_error(Code::UNKNOWN, format!("{e:#}"))
}

fn timestamp(at: SystemTime) -> MessageField<Timestamp> {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    MessageField::some(Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
        ..Default::default()
    })
}

impl<S: EventSink> TaskService<S> {
    /// A service with no container yet.
    pub fn new(
        engine: &str,
        namespace: &str,
        debug: bool,
        events: S,
        reaper: Arc<Reaper>,
        runtime: Arc<dyn Runtime>,
        exit: Arc<ExitSignal>,
    ) -> Self {
        Self {
            engine: engine.to_string(),
            namespace: namespace.to_string(),
            debug,
            events,
            reaper,
            runtime,
            exit,
            containers: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashSet::new()),
            kills: RwLock::new(()),
        }
    }

    /// Reserves `id` for a Create until the returned guard is dropped; refused while a
    /// container of that id exists or is being created.
    fn reserve(&self, id: &str) -> ttrpc::Result<Reservation<'_>> {
        let containers = self.containers.lock().unwrap();
        let mut creating = self.creating.lock().unwrap();
        if containers.contains_key(id) || !creating.insert(id.to_string()) {
            return Err(rpc_error(
                Code::ALREADY_EXISTS,
                format!("container {id} already exists"),
            ));
        }
        Ok(Reservation {
            creating: &self.creating,
            id: id.to_string(),
        })
    }

    fn container(&self, id: &str) -> ttrpc::Result<Arc<Container>> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| rpc_error(Code::NOT_FOUND, format!("container {id} not found")))
    }

    /// The process a request names: the init process, or with an exec id an exec process.
    fn target(&self, id: &str, exec_id: &str) -> ttrpc::Result<Target> {
        let container = self.container(id)?;
        let exec = if exec_id.is_empty() {
            None
        } else {
            Some(container.exec(exec_id)?)
        };
        Ok(Target { container, exec })
    }

    fn start_exec(&self, container: &Container, exec_id: &str) -> ttrpc::Result<u32> {
        let exec = container.exec(exec_id)?;
        let events = &self.events;
        let exit_events = self.events.clone();
        let began = Instant::now();
        let pid = container.start_exec(
            &exec,
            &self.reaper,
            self.debug,
            |e| {
                events.send(TaskExecStarted {
                    container_id: e.process.container_id.clone(),
                    exec_id: e.exec_id.clone(),
                    pid: e.process.pid() as u32,
                    ..Default::default()
                })
            },
            move |e| exit_events.send(exit_event(&e.process)),
        )?;
        info!(id = container.id.as_str(); "exec process {exec_id} of container {} started, pid {pid}", container.id);
        debug!(id = container.id.as_str(); "start of exec {exec_id} took {:?}", began.elapsed());
        Ok(pid as u32)
    }

    fn create_container(&self, req: &api::CreateTaskRequest) -> anyhow::Result<Arc<Container>> {
        let options = RuntimeOptions::parse(req.options.as_ref(), &self.engine, &self.namespace)?;
        let bundle = PathBuf::from(&req.bundle);
        options::record_state_root(&bundle, &options.state_root)?;
        let request = CreateRequest {
            id: req.id.clone(),
            bundle,
            rootfs: RootfsMount::from_request(&req.rootfs),
            state_root: options.state_root,
            systemd_cgroup: options.systemd_cgroup,
            stdio: StdioPaths::from_request(&req.stdin, &req.stdout, &req.stderr),
            console_socket: None,
            debug: self.debug,
        };
        let events = self.events.clone();
        Container::create(
            request,
            req.terminal,
            &self.runtime,
            &self.reaper,
            move |c| events.send(exit_event(&c.init)),
        )
    }
}

/// An id taken by a Create under way; given back when dropped.
struct Reservation<'a> {
    creating: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.creating.lock().unwrap().remove(&self.id);
    }
}

/// A container and, when the request named one, one of its exec processes.
struct Target {
    container: Arc<Container>,
    exec: Option<Arc<Exec>>,
}

impl Target {
    fn process(&self) -> &Process {
        self.exec
            .as_ref()
            .map_or(&self.container.init, |exec| &exec.process)
    }
}

/// `/tasks/exit` for a process: `id` is the exec id for an exec process.
fn exit_event(process: &Process) -> TaskExit {
    let (exit_status, exited_at) = process.wait();
    TaskExit {
        container_id: process.container_id.clone(),
        id: process.event_id.clone(),
        pid: process.pid() as u32,
        exit_status,
        exited_at: timestamp(exited_at),
        ..Default::default()
    }
}

impl<S: EventSink> containerd_shim::Task for TaskService<S> {
    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(rpc_error(
                Code::UNIMPLEMENTED,
                "restoring a checkpoint is not supported",
            ));
        }
        let reservation = self.reserve(&req.id)?;
        let began = Instant::now();
        let container = self.create_container(&req).map_err(|e| {
            error!(id = req.id.as_str(); "create container {}: {e:#}", req.id);
            failed(e)
        })?;
        let pid = container.init.pid() as u32;
        crate::shim::oom::watch(&req.id, container.init.pid(), self.events.clone());
        info!(id = req.id.as_str(); "container {} created ({:?}), pid {pid}", req.id, container.kind);
        debug!(id = req.id.as_str(); "create of {} took {:?}", req.id, began.elapsed());
        self.containers
            .lock()
            .unwrap()
            .insert(req.id.clone(), container);
        // Only now: the id is never free in between.
        drop(reservation);
        self.events.send(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid,
            ..Default::default()
        });
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let container = self.container(&req.id)?;
        if !req.exec_id.is_empty() {
            let pid = self.start_exec(&container, &req.exec_id)?;
            return Ok(api::StartResponse {
                pid,
                ..Default::default()
            });
        }
        let events = &self.events;
        let began = Instant::now();
        let pid = container.start(|c| {
            events.send(TaskStart {
                container_id: c.id.clone(),
                pid: c.init.pid() as u32,
                ..Default::default()
            })
        })?;
        info!(id = req.id.as_str(); "container {} started", req.id);
        debug!(id = req.id.as_str(); "start of {} took {:?}", req.id, began.elapsed());
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let target = self.target(&req.id, &req.exec_id)?;
        let process = target.process();
        let status = *process.status();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut resp = api::StateResponse {
            id: process.event_id.clone(),
            bundle: target.container.bundle.to_string_lossy().into_owned(),
            pid: process.pid() as u32,
            stdin: path(&process.stdio.stdin),
            stdout: path(&process.stdio.stdout),
            stderr: path(&process.stdio.stderr),
            terminal: process.terminal,
            exec_id: req.exec_id.clone(),
            ..Default::default()
        };
        resp.status = match status {
            crate::shim::status::Status::Created => ApiStatus::CREATED,
            crate::shim::status::Status::Running => ApiStatus::RUNNING,
            crate::shim::status::Status::Paused => ApiStatus::PAUSED,
            crate::shim::status::Status::Stopped {
                exit_status,
                exited_at,
            } => {
                resp.exit_status = exit_status;
                resp.exited_at = timestamp(exited_at);
                ApiStatus::STOPPED
            }
        }
        .into();
        Ok(resp)
    }

    fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        let _running = self.kills.read().unwrap_or_else(|e| e.into_inner());
        let target = self.target(&req.id, &req.exec_id)?;
        let killed = match &target.exec {
            None => target.container.kill(req.signal, req.all),
            Some(exec) => exec.kill(req.signal),
        };
        match killed {
            Ok(()) => Ok(api::Empty::new()),
            // As runc's shim says: containerd (and Docker's stop) treat it as "already gone".
            Err(ContainerError::Illegal(e)) => Err(rpc_error(
                Code::NOT_FOUND,
                format!("process already finished: {e}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn wait(&self, _ctx: &TtrpcContext, req: api::WaitRequest) -> TtrpcResult<api::WaitResponse> {
        let (exit_status, exited_at) = self.target(&req.id, &req.exec_id)?.process().wait();
        Ok(api::WaitResponse {
            exit_status,
            exited_at: timestamp(exited_at),
            ..Default::default()
        })
    }

    fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let container = self.container(&req.id)?;
        if !req.exec_id.is_empty() {
            let pid = container.exec(&req.exec_id)?.process.pid() as u32;
            let (exit_status, exited_at) = container.delete_exec(&req.exec_id)?;
            info!(id = req.id.as_str(); "exec process {} of container {} deleted", req.exec_id, req.id);
            // As runc's shim: no /tasks/delete event for an exec process.
            return Ok(api::DeleteResponse {
                pid,
                exit_status,
                exited_at: timestamp(exited_at),
                ..Default::default()
            });
        }
        let deleted = container.delete();
        // A concurrent delete that lost the race answers NOT_FOUND; the container must be out
        // of the map before either answer, or containerd's Shutdown after the first answer
        // would find it still there and the shim would never exit.
        if matches!(deleted, Ok(_) | Err(ContainerError::Deleted(_))) {
            self.containers.lock().unwrap().remove(&req.id);
        }
        let (exit_status, exited_at) = deleted?;
        info!(id = req.id.as_str(); "container {} deleted", req.id);
        let pid = container.init.pid() as u32;
        self.events.send(TaskDelete {
            container_id: req.id.clone(),
            id: req.id.clone(),
            pid,
            exit_status,
            exited_at: timestamp(exited_at),
            ..Default::default()
        });
        Ok(api::DeleteResponse {
            pid,
            exit_status,
            exited_at: timestamp(exited_at),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: api::PidsRequest) -> TtrpcResult<api::PidsResponse> {
        let pids = self.container(&req.id)?.pids()?;
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| containerd_shim::protos::types::task::ProcessInfo {
                    pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let stats = self.container(&req.id)?.stats()?;
        let setup = libcgroups::common::get_cgroup_setup()
            .map_err(|e| failed(anyhow::anyhow!("detect the cgroup setup: {e}")))?;
        let any = convert_to_any(stats::to_metrics(&stats, setup)).map_err(|e| failed(e.into()))?;
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let target = self.target(&req.id, &req.exec_id)?;
        if req.stdin {
            let process = target.process();
            info!(id = req.id.as_str(); "closing stdin of {}", process.name);
            process.close_stdin();
        }
        Ok(api::Empty::new())
    }

    fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = self
            .container(&req.id)
            .map(|c| c.init.pid() as u32)
            .unwrap_or_default();
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        // containerd asks after each delete; the shim stays while it has containers.
        let _no_kill_running = self.kills.write().unwrap_or_else(|e| e.into_inner());
        // A Create under way (the pod's next container) keeps the shim too.
        let containers = self.containers.lock().unwrap();
        if containers.is_empty() && self.creating.lock().unwrap().is_empty() {
            info!("no containers left: shutting down");
            self.exit.signal();
        }
        Ok(api::Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        let spec = req
            .spec
            .as_ref()
            .map(|any| serde_json::from_slice::<serde_json::Value>(&any.value))
            .transpose()
            .ok()
            .flatten()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| {
                let message = format!(
                    "exec process {} of container {}: no OCI process spec (JSON) in the request",
                    req.exec_id, req.id
                );
                rpc_error(Code::INVALID_ARGUMENT, message)
            })?;
        let stdio = StdioPaths::from_request(&req.stdin, &req.stdout, &req.stderr);
        container.add_exec(&req.exec_id, spec, stdio, req.terminal)?;
        info!(id = req.id.as_str(); "exec process {} of container {} added", req.exec_id, req.id);
        self.events.send(TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        let events = &self.events;
        self.container(&req.id)?.pause(|c| {
            events.send(TaskPaused {
                container_id: c.id.clone(),
                ..Default::default()
            })
        })?;
        info!(id = req.id.as_str(); "container {} paused", req.id);
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        let events = &self.events;
        self.container(&req.id)?.resume(|c| {
            events.send(TaskResumed {
                container_id: c.id.clone(),
                ..Default::default()
            })
        })?;
        info!(id = req.id.as_str(); "container {} resumed", req.id);
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let container = self.container(&req.id)?;
        let Some(any) = req.resources.as_ref() else {
            let message = format!("update of container {}: no resources given", req.id);
            return Err(rpc_error(Code::INVALID_ARGUMENT, message));
        };
        // containerd sends the runtime spec's LinuxResources as JSON.
        let resources: oci_spec::runtime::LinuxResources = serde_json::from_slice(&any.value)
            .map_err(|e| {
                let message = format!(
                    "update of container {}: resources ({}) are not LinuxResources JSON: {e}",
                    req.id, any.type_url
                );
                rpc_error(Code::INVALID_ARGUMENT, message)
            })?;
        container.update(&resources)?;
        info!(id = req.id.as_str(); "container {} resources updated", req.id);
        Ok(api::Empty::new())
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let target = self.target(&req.id, &req.exec_id)?;
        let size = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
        target
            .process()
            .resize_console(size(req.width), size(req.height))
            .map_err(failed)?;
        Ok(api::Empty::new())
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        _req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        Err(rpc_error(
            Code::UNIMPLEMENTED,
            "checkpoint is not supported by this shim",
        ))
    }
}
