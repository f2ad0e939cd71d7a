//! The ttrpc Task service: each verb maps onto a [`Container`] method, or with an exec id onto
//! one of its exec processes. Verbs not supported answer UNIMPLEMENTED with a message.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Context;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};

use containerd_shim::api::{self, Status as ApiStatus};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::util::convert_to_any;
use containerd_shim::{ExitSignal, TtrpcContext, TtrpcResult};
use log::{debug, error, info};

use crate::config::Options;
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
use crate::shim::wasm_layers;
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
    /// The runtime options of the last create and what they parsed to: every container of a
    /// shim has its runtime's options, so they are parsed once.
    parsed_options: Mutex<Option<(Option<Any>, Options)>>,
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
            parsed_options: Mutex::new(None),
        }
    }

    /// The options of a create request, parsed (or as parsed for the previous create).
    fn runtime_options(&self, any: Option<&Any>) -> anyhow::Result<RuntimeOptions> {
        let mut parsed = self
            .parsed_options
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let options = match parsed.as_ref() {
            Some((seen, options)) if seen.as_ref() == any => options.clone(),
            _ => {
                let runtime = format!("the {} shim", self.engine);
                let options = Options::from_any(any, &runtime)?;
                *parsed = Some((any.cloned(), options.clone()));
                options
            }
        };
        Ok(RuntimeOptions::new(options, &self.engine, &self.namespace))
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
            move |e, status, at| exit_events.send(exit_event(&e.process, status, at)),
        )?;
        info!(id = container.id.as_str(); "exec process {exec_id} of container {} started, pid {pid}", container.id);
        debug!(id = container.id.as_str(); "start of exec {exec_id} took {:?}", began.elapsed());
        Ok(pid as u32)
    }

    fn create_container(&self, req: &api::CreateTaskRequest) -> anyhow::Result<Arc<Container>> {
        let options = self.runtime_options(req.options.as_ref())?;
        let bundle = PathBuf::from(&req.bundle);
        options::record_state_root(&bundle, &options.state_root)?;
        let rootfs = RootfsMount::from_request(&req.rootfs);
        let wasm_modules = match wasm_layers::unpacked_nothing(&rootfs, &bundle)? {
            Some(dir) => self
                .runtime
                .wasm_modules(&self.namespace, &req.id, &dir)
                .with_context(|| format!("container {}: the image's Wasm layers", req.id))?,
            None => Vec::new(),
        };
        let request = CreateRequest {
            id: req.id.clone(),
            bundle,
            rootfs,
            state_root: options.state_root,
            systemd_cgroup: options.systemd_cgroup,
            options: options.options,
            stdio: StdioPaths::from_request(&req.stdin, &req.stdout, &req.stderr),
            console_socket: None,
            wasm_modules,
            debug: self.debug,
        };
        let events = self.events.clone();
        Container::create(
            request,
            req.terminal,
            &self.runtime,
            &self.reaper,
            move |c, status, at| events.send(exit_event(&c.init, status, at)),
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
fn exit_event(process: &Process, exit_status: u32, exited_at: SystemTime) -> TaskExit {
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

/// The verbs against a fake [`Runtime`] whose helper starts real processes (so pidfds,
/// signals, the reaper and exits are real) and a sink that records the events. Each test runs
/// alone in a copy of the test binary (see [`crate::test_support::alone`]): the reaper reaps
/// every child of its process.
#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    use containerd_shim::Task;
    use containerd_shim::event::Event;
    use containerd_shim::protos::protobuf::MessageDyn;

    use super::*;
    use crate::request::{HelperRequest, Kind};
    use crate::shim::runtime::StateRef;
    use crate::test_support::alone;

    /// The topics of the events sent, in order.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<String>>>);

    impl EventSink for Recorded {
        fn send<T: Event + MessageDyn + Send + 'static>(&self, event: T) {
            self.0.lock().unwrap().push(event.topic());
        }
    }

    impl Recorded {
        /// Waits (a while) until `topics` have been sent, in this order, and nothing else.
        fn expect(&self, topics: &[&str]) {
            for _ in 0..200 {
                if *self.0.lock().unwrap() == topics {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(*self.0.lock().unwrap(), topics);
        }
    }

    /// A helper that runs the request's process as a plain child: the init runs `sleep 60`
    /// (as if started at once), an exec runs its args.
    #[derive(Default)]
    struct FakeRuntime {
        /// What the service asked for, in order (`create c1`, `start c1`, ...).
        calls: Mutex<Vec<String>>,
        pids: Mutex<HashMap<String, i32>>,
        /// When set, the next create waits for a message here, after telling `entered`.
        hold_create: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    }

    impl FakeRuntime {
        fn record(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        fn spawn(args: &[String]) -> anyhow::Result<i32> {
            // Not the test's output: a child left by a failed test would hold the pipe its
            // copy of the test binary is read through.
            let child = Command::new(&args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            Ok(child.id() as i32)
        }
    }

    impl Runtime for FakeRuntime {
        fn run_helper(&self, request: &HelperRequest) -> anyhow::Result<(i32, Kind)> {
            match request {
                HelperRequest::Create(create) => {
                    match create.wasm_modules.as_slice() {
                        [] => self.record(format!("create {}", create.id)),
                        modules => self.record(format!("create {} {modules:?}", create.id)),
                    }
                    if let Some((entered, release)) = self.hold_create.lock().unwrap().take() {
                        entered.send(()).unwrap();
                        release.recv().unwrap();
                    }
                    let pid = Self::spawn(&["sleep".into(), "60".into()])?;
                    self.pids.lock().unwrap().insert(create.id.clone(), pid);
                    Ok((pid, Kind::Wasm))
                }
                HelperRequest::Exec(exec) => {
                    self.record(format!("exec {} {}", exec.container_id, exec.exec_id));
                    let args: Vec<String> = serde_json::from_value(exec.process["args"].clone())?;
                    Ok((Self::spawn(&args)?, Kind::Native))
                }
            }
        }

        fn start(&self, c: &StateRef) -> anyhow::Result<()> {
            self.record(format!("start {}", c.id));
            Ok(())
        }

        fn pause(&self, c: &StateRef) -> anyhow::Result<()> {
            self.record(format!("pause {}", c.id));
            Ok(())
        }

        fn resume(&self, c: &StateRef) -> anyhow::Result<()> {
            self.record(format!("resume {}", c.id));
            Ok(())
        }

        fn kill_all(&self, c: &StateRef, signal: i32) -> anyhow::Result<()> {
            self.record(format!("kill_all {} {signal}", c.id));
            let pid = self.pids.lock().unwrap()[&c.id];
            Ok(nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(signal)?,
            )?)
        }

        fn update(
            &self,
            c: &StateRef,
            resources: &oci_spec::runtime::LinuxResources,
        ) -> anyhow::Result<()> {
            let limit = resources.pids().as_ref().map(|p| p.limit());
            self.record(format!("update {} pids {limit:?}", c.id));
            Ok(())
        }

        fn pids(&self, c: &StateRef) -> anyhow::Result<Vec<u32>> {
            self.record(format!("pids {}", c.id));
            Ok(vec![self.pids.lock().unwrap()[&c.id] as u32])
        }

        fn stats(&self, c: &StateRef) -> anyhow::Result<libcgroups::stats::Stats> {
            self.record(format!("stats {}", c.id));
            Ok(Default::default())
        }

        fn delete(&self, c: &StateRef) -> anyhow::Result<()> {
            self.record(format!("delete {}", c.id));
            Ok(())
        }

        fn remove_leftovers(&self, c: &StateRef) {
            self.record(format!("remove_leftovers {}", c.id));
        }

        fn wasm_modules(
            &self,
            _: &str,
            id: &str,
            _: &std::path::Path,
        ) -> anyhow::Result<Vec<String>> {
            self.record(format!("wasm_modules {id}"));
            Ok(vec!["/m.wasm".into()])
        }
    }

    struct Fixture {
        service: TaskService<Recorded>,
        runtime: Arc<FakeRuntime>,
        events: Recorded,
        bundle: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let runtime = Arc::new(FakeRuntime::default());
        let events = Recorded::default();
        let service = TaskService::new(
            "fake",
            "test",
            false,
            events.clone(),
            Reaper::start().unwrap(),
            Arc::clone(&runtime) as Arc<dyn Runtime>,
            Arc::new(ExitSignal::default()),
        );
        Fixture {
            service,
            runtime,
            events,
            bundle: tempfile::tempdir().unwrap(),
        }
    }

    fn ctx() -> TtrpcContext {
        TtrpcContext {
            fd: -1,
            cancel_rx: crossbeam_channel::never(),
            mh: Default::default(),
            res_tx: mpsc::channel().0,
            metadata: Default::default(),
            timeout_nano: 0,
        }
    }

    fn code<T: std::fmt::Debug>(result: TtrpcResult<T>) -> Code {
        match result {
            Err(ttrpc::Error::RpcStatus(status)) => status.code(),
            other => panic!("expected an error status, got {other:?}"),
        }
    }

    impl Fixture {
        /// Create of an ordinary image's container: its rootfs is an overlay of the layers.
        fn create(&self, id: &str) -> TtrpcResult<api::CreateTaskResponse> {
            self.service.create(
                &ctx(),
                api::CreateTaskRequest {
                    id: id.into(),
                    bundle: self.bundle.path().to_string_lossy().into_owned(),
                    rootfs: vec![containerd_shim::protos::types::mount::Mount {
                        type_: "overlay".into(),
                        source: "overlay".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
        }

        fn start(&self, id: &str, exec_id: &str) -> TtrpcResult<api::StartResponse> {
            let req = api::StartRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..Default::default()
            };
            self.service.start(&ctx(), req)
        }

        fn state(&self, id: &str, exec_id: &str) -> api::StateResponse {
            let req = api::StateRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..Default::default()
            };
            self.service.state(&ctx(), req).unwrap()
        }

        fn kill(&self, id: &str, exec_id: &str, signal: i32) -> TtrpcResult<api::Empty> {
            let req = api::KillRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                signal: signal as u32,
                ..Default::default()
            };
            self.service.kill(&ctx(), req)
        }

        fn wait(&self, id: &str, exec_id: &str) -> u32 {
            let req = api::WaitRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..Default::default()
            };
            self.service.wait(&ctx(), req).unwrap().exit_status
        }

        fn delete(&self, id: &str, exec_id: &str) -> TtrpcResult<api::DeleteResponse> {
            let req = api::DeleteRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                ..Default::default()
            };
            self.service.delete(&ctx(), req)
        }

        fn exec(&self, id: &str, exec_id: &str, args: &[&str]) -> TtrpcResult<api::Empty> {
            let spec = serde_json::json!({"args": args, "cwd": "/", "user": {"uid": 0, "gid": 0}});
            let req = api::ExecProcessRequest {
                id: id.into(),
                exec_id: exec_id.into(),
                spec: MessageField::some(
                    containerd_shim::protos::protobuf::well_known_types::any::Any {
                        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process"
                            .into(),
                        value: serde_json::to_vec(&spec).unwrap(),
                        ..Default::default()
                    },
                ),
                ..Default::default()
            };
            self.service.exec(&ctx(), req)
        }

        fn shutdown_signalled(&self) -> bool {
            self.service
                .shutdown(&ctx(), api::ShutdownRequest::new())
                .unwrap();
            // The synchronous ExitSignal has no peek: wait on it from a thread for a moment.
            let exit = Arc::clone(&self.service.exit);
            let (done, signalled) = mpsc::channel();
            std::thread::spawn(move || {
                exit.wait();
                let _ = done.send(());
            });
            signalled.recv_timeout(Duration::from_millis(300)).is_ok()
        }
    }

    #[test]
    fn a_container_lives_through_every_state_in_order() {
        alone(
            module_path!(),
            "a_container_lives_through_every_state_in_order",
            || {
                let f = fixture();
                let pid = f.create("c1").unwrap().pid;
                assert_eq!(f.state("c1", "").status(), ApiStatus::CREATED);
                assert_eq!(f.state("c1", "").pid, pid);
                assert_eq!(f.start("c1", "").unwrap().pid, pid);
                assert_eq!(f.state("c1", "").status(), ApiStatus::RUNNING);
                f.service
                    .pause(
                        &ctx(),
                        api::PauseRequest {
                            id: "c1".into(),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                assert_eq!(f.state("c1", "").status(), ApiStatus::PAUSED);
                f.service
                    .resume(
                        &ctx(),
                        api::ResumeRequest {
                            id: "c1".into(),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                let connected = f
                    .service
                    .connect(
                        &ctx(),
                        api::ConnectRequest {
                            id: "c1".into(),
                            ..Default::default()
                        },
                    )
                    .unwrap();
                assert_eq!(
                    (connected.shim_pid, connected.task_pid),
                    (std::process::id(), pid)
                );
                f.kill("c1", "", libc::SIGTERM).unwrap();
                assert_eq!(f.wait("c1", ""), 128 + libc::SIGTERM as u32);
                let stopped = f.state("c1", "");
                assert_eq!(
                    (stopped.status(), stopped.exit_status),
                    (ApiStatus::STOPPED, 143)
                );
                assert!(
                    !f.shutdown_signalled(),
                    "the shim stays while it has a container"
                );
                let deleted = f.delete("c1", "").unwrap();
                assert_eq!((deleted.pid, deleted.exit_status), (pid, 143));
                f.events.expect(&[
                    "/tasks/create",
                    "/tasks/start",
                    "/tasks/paused",
                    "/tasks/resumed",
                    "/tasks/exit",
                    "/tasks/delete",
                ]);
                assert_eq!(
                    f.runtime.calls(),
                    [
                        "create c1",
                        "start c1",
                        "pause c1",
                        "resume c1",
                        "delete c1"
                    ]
                );
                assert!(f.shutdown_signalled(), "no container left");
            },
        );
    }

    #[test]
    fn each_verb_answers_its_error_code() {
        alone(module_path!(), "each_verb_answers_its_error_code", || {
            let f = fixture();
            let s = &f.service;
            // An id nobody created.
            assert_eq!(code(f.start("nope", "")), Code::NOT_FOUND);
            assert_eq!(code(f.kill("nope", "", 9)), Code::NOT_FOUND);
            assert_eq!(code(f.delete("nope", "")), Code::NOT_FOUND);
            assert_eq!(code(f.exec("nope", "e1", &["true"])), Code::NOT_FOUND);
            let id = || "nope".to_string();
            let state = api::StateRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.state(&ctx(), state)), Code::NOT_FOUND);
            let wait = api::WaitRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.wait(&ctx(), wait)), Code::NOT_FOUND);
            let pids = api::PidsRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.pids(&ctx(), pids)), Code::NOT_FOUND);
            let stats = api::StatsRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.stats(&ctx(), stats)), Code::NOT_FOUND);
            let close = api::CloseIORequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.close_io(&ctx(), close)), Code::NOT_FOUND);
            let pause = api::PauseRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.pause(&ctx(), pause)), Code::NOT_FOUND);
            let resume = api::ResumeRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.resume(&ctx(), resume)), Code::NOT_FOUND);
            let update = api::UpdateTaskRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.update(&ctx(), update)), Code::NOT_FOUND);
            let resize = api::ResizePtyRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.resize_pty(&ctx(), resize)), Code::NOT_FOUND);
            // What the shim does not do.
            let checkpoint = api::CheckpointTaskRequest {
                id: id(),
                ..Default::default()
            };
            assert_eq!(code(s.checkpoint(&ctx(), checkpoint)), Code::UNIMPLEMENTED);
            let restore = api::CreateTaskRequest {
                id: "r".into(),
                checkpoint: "/cp".into(),
                ..Default::default()
            };
            assert_eq!(code(s.create(&ctx(), restore)), Code::UNIMPLEMENTED);

            // A created container: what only a running one may do.
            f.create("c1").unwrap();
            assert_eq!(code(f.create("c1")), Code::ALREADY_EXISTS);
            let pause = api::PauseRequest {
                id: "c1".into(),
                ..Default::default()
            };
            assert_eq!(code(s.pause(&ctx(), pause)), Code::FAILED_PRECONDITION);
            assert_eq!(
                code(f.exec("c1", "e1", &["true"])),
                Code::FAILED_PRECONDITION
            );
            let no_resources = api::UpdateTaskRequest {
                id: "c1".into(),
                ..Default::default()
            };
            assert_eq!(code(s.update(&ctx(), no_resources)), Code::INVALID_ARGUMENT);
            let resize = api::ResizePtyRequest {
                id: "c1".into(),
                width: 80,
                height: 24,
                ..Default::default()
            };
            assert_eq!(
                code(s.resize_pty(&ctx(), resize)),
                Code::UNKNOWN,
                "no terminal"
            );
            f.start("c1", "").unwrap();
            assert_eq!(code(f.start("c1", "")), Code::FAILED_PRECONDITION);
            assert_eq!(
                code(f.delete("c1", "")),
                Code::FAILED_PRECONDITION,
                "running"
            );
            let no_spec = api::ExecProcessRequest {
                id: "c1".into(),
                exec_id: "e0".into(),
                ..Default::default()
            };
            assert_eq!(code(s.exec(&ctx(), no_spec)), Code::INVALID_ARGUMENT);
            let resources = oci_spec::runtime::LinuxResourcesBuilder::default()
                .pids(
                    oci_spec::runtime::LinuxPidsBuilder::default()
                        .limit(7)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap();
            let update = api::UpdateTaskRequest {
                id: "c1".into(),
                resources: MessageField::some(
                    containerd_shim::protos::protobuf::well_known_types::any::Any {
                        value: serde_json::to_vec(&resources).unwrap(),
                        ..Default::default()
                    },
                ),
                ..Default::default()
            };
            s.update(&ctx(), update).unwrap();
            let pids = api::PidsRequest {
                id: "c1".into(),
                ..Default::default()
            };
            assert_eq!(s.pids(&ctx(), pids).unwrap().processes.len(), 1);
            let stats = api::StatsRequest {
                id: "c1".into(),
                ..Default::default()
            };
            assert!(s.stats(&ctx(), stats).unwrap().stats.is_some());

            // A stopped one: a kill is "already finished" (NOT_FOUND, as runc's shim says).
            f.kill("c1", "", libc::SIGKILL).unwrap();
            f.wait("c1", "");
            assert_eq!(code(f.kill("c1", "", libc::SIGKILL)), Code::NOT_FOUND);
            f.delete("c1", "").unwrap();
            assert_eq!(code(f.delete("c1", "")), Code::NOT_FOUND, "deleted");
            assert_eq!(
                f.runtime.calls(),
                [
                    "create c1",
                    "start c1",
                    "update c1 pids Some(7)",
                    "pids c1",
                    "stats c1",
                    "delete c1"
                ]
            );
        });
    }

    #[test]
    fn exec_processes_have_their_own_ids_states_and_events() {
        alone(
            module_path!(),
            "exec_processes_have_their_own_ids_states_and_events",
            || {
                let f = fixture();
                f.create("c1").unwrap();
                f.start("c1", "").unwrap();
                f.exec("c1", "e1", &["sh", "-c", "exit 3"]).unwrap();
                assert_eq!(code(f.exec("c1", "e1", &["true"])), Code::ALREADY_EXISTS);
                assert_eq!(f.state("c1", "e1").status(), ApiStatus::CREATED);
                assert_eq!(f.state("c1", "e1").exec_id, "e1");
                let pid = f.start("c1", "e1").unwrap().pid;
                assert_eq!(f.wait("c1", "e1"), 3);
                let stopped = f.state("c1", "e1");
                assert_eq!(
                    (stopped.status(), stopped.pid, stopped.exit_status),
                    (ApiStatus::STOPPED, pid, 3)
                );
                assert_eq!(
                    f.state("c1", "").status(),
                    ApiStatus::RUNNING,
                    "the init runs on"
                );
                assert_eq!(code(f.start("c1", "e1")), Code::FAILED_PRECONDITION);
                let deleted = f.delete("c1", "e1").unwrap();
                assert_eq!((deleted.pid, deleted.exit_status), (pid, 3));
                assert_eq!(code(f.delete("c1", "e1")), Code::NOT_FOUND);
                // An exec that never started is deleted as such.
                f.exec("c1", "e2", &["true"]).unwrap();
                f.delete("c1", "e2").unwrap();
                f.kill("c1", "", libc::SIGKILL).unwrap();
                f.wait("c1", "");
                f.delete("c1", "").unwrap();
                // No /tasks/delete for an exec process, as runc's shim.
                f.events.expect(&[
                    "/tasks/create",
                    "/tasks/start",
                    "/tasks/exec-added",
                    "/tasks/exec-started",
                    "/tasks/exit",
                    "/tasks/exec-added",
                    "/tasks/exit",
                    "/tasks/delete",
                ]);
                assert_eq!(
                    f.runtime.calls(),
                    ["create c1", "start c1", "exec c1 e1", "delete c1"]
                );
            },
        );
    }

    #[test]
    fn two_creates_of_one_id_reach_the_helper_once() {
        alone(
            module_path!(),
            "two_creates_of_one_id_reach_the_helper_once",
            || {
                let f = Arc::new(fixture());
                let (entered_tx, entered) = mpsc::channel();
                let (release, release_rx) = mpsc::channel();
                *f.runtime.hold_create.lock().unwrap() = Some((entered_tx, release_rx));
                let first = {
                    let f = Arc::clone(&f);
                    std::thread::spawn(move || f.create("c1").map(|r| r.pid))
                };
                entered.recv_timeout(Duration::from_secs(10)).unwrap();
                // The first is in its helper: the second is refused without one.
                assert_eq!(code(f.create("c1")), Code::ALREADY_EXISTS);
                assert!(!f.shutdown_signalled(), "a create under way keeps the shim");
                release.send(()).unwrap();
                first.join().unwrap().unwrap();
                assert_eq!(code(f.create("c1")), Code::ALREADY_EXISTS, "created");
                assert_eq!(f.runtime.calls(), ["create c1"]);
                f.kill("c1", "", libc::SIGKILL).unwrap();
                f.wait("c1", "");
                f.delete("c1", "").unwrap();
            },
        );
    }

    #[test]
    fn a_failed_create_leaves_nothing_and_frees_the_id() {
        alone(
            module_path!(),
            "a_failed_create_leaves_nothing_and_frees_the_id",
            || {
                let f = fixture();
                let bad = api::CreateTaskRequest {
                    id: "c1".into(),
                    bundle: "/nonexistent/bundle".into(),
                    ..Default::default()
                };
                assert_eq!(code(f.service.create(&ctx(), bad)), Code::UNKNOWN);
                assert!(f.runtime.calls().is_empty(), "refused before the helper");
                f.create("c1").unwrap();
                f.events.expect(&["/tasks/create"]);
                f.kill("c1", "", libc::SIGKILL).unwrap();
                f.wait("c1", "");
                f.delete("c1", "").unwrap();
            },
        );
    }

    #[test]
    fn an_empty_snapshot_is_searched_for_wasm_layers() {
        alone(
            module_path!(),
            "an_empty_snapshot_is_searched_for_wasm_layers",
            || {
                let f = fixture();
                let mount = |id: &str, type_: &str| api::CreateTaskRequest {
                    id: id.into(),
                    bundle: f.bundle.path().to_string_lossy().into_owned(),
                    rootfs: vec![containerd_shim::protos::types::mount::Mount {
                        type_: type_.into(),
                        source: "/snapshots/1/fs".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                f.service.create(&ctx(), mount("a1", "bind")).unwrap();
                f.service.create(&ctx(), mount("o1", "overlay")).unwrap();
                assert_eq!(
                    f.runtime.calls(),
                    ["wasm_modules a1", "create a1 [\"/m.wasm\"]", "create o1"]
                );
                for id in ["a1", "o1"] {
                    f.kill(id, "", libc::SIGKILL).unwrap();
                    f.wait(id, "");
                    f.delete(id, "").unwrap();
                }
            },
        );
    }
}
