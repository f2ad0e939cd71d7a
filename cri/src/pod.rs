//! A pod as the kubelet makes one: RunPodSandbox with a runtime handler, containers created
//! and started in it, and StopPodSandbox + RemovePodSandbox at the end (also when a test
//! fails half-way, on drop).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_cri::v1::{
    ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatus,
    ContainerStatusRequest, CreateContainerRequest, DnsConfig, ExecSyncRequest, ExecSyncResponse,
    ImageSpec, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, ListContainersRequest, Mount,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata, PodSandboxStatusRequest,
    PodSandboxStatusResponse, PortMapping, RemoveContainerRequest, RemovePodSandboxRequest,
    RunPodSandboxRequest, SecurityProfile, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use shim_conformance::environment::containerd;
use shim_conformance::leftovers::shims_of;
use shim_conformance::procfs;

use crate::client::{CALL_TIMEOUT, CallResult, Cri, named};
use crate::images::{Image, NATIVE_DEMO, PAUSE, TCP_ECHO, TCP_ECHO_NATIVE, WASI_DEMO_APP};

/// The Kubernetes namespace the pods claim to be in (metadata only).
const POD_NAMESPACE: &str = "wasm-shims-cri";

/// The cgroup (in every hierarchy) below which each pod gets its own, as the kubelet's
/// `kubepods` does. The kubelet makes and removes the pod's cgroup; here [`Pod`] does.
pub const CGROUP_ROOT: &str = "/wasm-shims-cri";

/// Where a container's image comes from.
#[derive(Debug, Clone)]
pub enum ContainerImage {
    /// A test image, imported into the CRI namespace on first use.
    Imported(&'static Image),
    /// A reference the test pulled itself (PullImage), used as it is.
    Pulled(String),
}

/// What a container runs: an image, its args (after the image's entrypoint), annotations,
/// and what the kubelet derives from the pod spec: the security context and volumes.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: ContainerImage,
    pub args: Vec<String>,
    pub annotations: HashMap<String, String>,
    /// The container's security context; its namespace options, when unset, are the
    /// kubelet's defaults.
    pub security: LinuxContainerSecurityContext,
    /// Volumes (hostPath-like mounts).
    pub mounts: Vec<Mount>,
    /// `stdin: true` of a Kubernetes container: the container's stdin stays open for
    /// Attach (CRI `ContainerConfig.stdin`).
    pub stdin: bool,
    /// `resources.limits.memory` in bytes (0: none), as the kubelet passes it to CRI
    /// (`LinuxContainerResources.memory_limit_in_bytes`).
    pub memory_limit: i64,
}

impl ContainerSpec {
    /// The Wasm demo (`/wasi-demo-app.wasm`) with a sub-command, e.g. `["sleep", "600"]`.
    pub fn wasm(name: &str, args: &[&str]) -> Self {
        Self::new(name, &WASI_DEMO_APP, args)
    }

    /// The native demo (`/native-demo`), same sub-commands: the pod's sidecar.
    pub fn native(name: &str, args: &[&str]) -> Self {
        Self::new(name, &NATIVE_DEMO, args)
    }

    /// Any test image with its args.
    pub fn new(name: &str, image: &'static Image, args: &[&str]) -> Self {
        Self::of(name, ContainerImage::Imported(image), args)
    }

    /// An image the test pulled, by its reference, with its args.
    pub fn pulled(name: &str, reference: &str, args: &[&str]) -> Self {
        Self::of(name, ContainerImage::Pulled(reference.to_owned()), args)
    }

    fn of(name: &str, image: ContainerImage, args: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            image,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            annotations: HashMap::new(),
            security: LinuxContainerSecurityContext::default(),
            mounts: Vec::new(),
            stdin: false,
            memory_limit: 0,
        }
    }

    /// Keeps the container's stdin open (Kubernetes' `stdin: true`), for Attach.
    pub fn with_stdin(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// A memory limit in bytes (Kubernetes' `resources.limits.memory`).
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_limit = bytes;
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The container's security context (`securityContext` of a Kubernetes container, as
    /// the kubelet passes it to CRI).
    pub fn security_context(mut self, security: LinuxContainerSecurityContext) -> Self {
        self.security = security;
        self
    }

    /// One more volume mount.
    pub fn mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }
}

/// Where a pod's cgroup is (`LinuxPodSandboxConfig.cgroup_parent`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PodCgroup {
    /// `CGROUP_ROOT/<pod uid>`, as the kubelet's cgroupfs driver names it.
    #[default]
    Cgroupfs,
    /// `wasm-shims-<pod uid>.slice`, as the kubelet's systemd driver names it: containerd
    /// then asks the runtime for the cgroupsPath `<slice>:cri-containerd:<id>`.
    SystemdSlice,
}

/// What a pod asks for besides its containers: the pod-level parts of a Kubernetes pod
/// spec that reach CRI.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    /// `metadata.annotations`.
    pub annotations: Vec<(String, String)>,
    /// `securityContext.sysctls`.
    pub sysctls: HashMap<String, String>,
    pub cgroup: PodCgroup,
    /// The sandbox may run privileged containers (CRI requires it for them).
    pub privileged: bool,
    /// The sandbox's seccomp profile (the pod's `securityContext.seccompProfile`).
    pub seccomp: Option<SecurityProfile>,
    /// `dnsConfig` (with `dnsPolicy: None`): what the kubelet asks for in the containers'
    /// /etc/resolv.conf.
    pub dns: Option<DnsConfig>,
    /// The containers' `ports` with a `hostPort`, as the kubelet hands them to
    /// RunPodSandbox.
    pub port_mappings: Vec<PortMapping>,
}

/// A running pod sandbox and the client that made it.
pub struct Pod {
    cri: Cri,
    pub id: String,
    pub handler: String,
    config: PodSandboxConfig,
    log_dir: PathBuf,
    cgroup_parent: String,
    /// RemovePodSandbox succeeded: nothing to clean up on drop but the log dir and cgroup.
    removed: bool,
}

/// Held shared while a pod is being made and exclusively while the directories that pods
/// share (the log dirs' parent, [`CGROUP_ROOT`]) are removed. A runtime makes
/// `CGROUP_ROOT/<pod uid>/<id>` with `mkdir -p` during RunPodSandbox: removing the empty
/// shared root between its two mkdirs (another test's pod going away) failed the pod with
/// "mkdir /sys/fs/cgroup/memory/wasm-shims-cri/<pod uid>: no such file or directory".
static SHARED_DIRS: RwLock<()> = RwLock::new(());

/// The namespaces the kubelet asks for by default: network and IPC per pod, pid per container.
fn kubelet_namespaces() -> NamespaceOption {
    NamespaceOption {
        network: NamespaceMode::Pod as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

/// A name no other pod of this run or of a concurrent run has.
fn unique_uid(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Pod {
    /// RunPodSandbox named `name` with runtime handler `handler` (a RuntimeClass's handler).
    pub fn run(name: &str, handler: &str) -> Result<Self> {
        Self::run_annotated(name, handler, &[])
    }

    /// [`Pod::run`] with pod annotations (`metadata.annotations` of a Kubernetes pod).
    pub fn run_annotated(name: &str, handler: &str, annotations: &[(&str, &str)]) -> Result<Self> {
        let options = PodOptions {
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        Self::run_with(name, handler, &options)
    }

    /// [`Pod::run`] with the pod-level settings of `options`.
    pub fn run_with(name: &str, handler: &str, options: &PodOptions) -> Result<Self> {
        let env = containerd();
        for image in [
            &PAUSE,
            &WASI_DEMO_APP,
            &NATIVE_DEMO,
            &TCP_ECHO,
            &TCP_ECHO_NATIVE,
        ] {
            image.ensure_imported()?;
        }
        let mut cri = Cri::connect(&env.address)?;
        let uid = unique_uid(name);
        let log_dir = std::env::temp_dir().join("wasm-shims-cri").join(&uid);
        let making = SHARED_DIRS.read().unwrap_or_else(PoisonError::into_inner);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create the pod log dir {}", log_dir.display()))?;
        let cgroup_parent = match options.cgroup {
            PodCgroup::Cgroupfs => format!("{CGROUP_ROOT}/{uid}"),
            PodCgroup::SystemdSlice => format!("wasm-shims-{uid}.slice"),
        };
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.to_owned(),
                uid: uid.clone(),
                namespace: POD_NAMESPACE.to_owned(),
                attempt: 0,
            }),
            hostname: name.to_owned(),
            annotations: options.annotations.iter().cloned().collect(),
            log_directory: log_dir.display().to_string(),
            dns_config: options.dns.clone(),
            port_mappings: options.port_mappings.clone(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: cgroup_parent.clone(),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(kubelet_namespaces()),
                    privileged: options.privileged,
                    seccomp: options.seccomp.clone(),
                    ..Default::default()
                }),
                sysctls: options.sysctls.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_owned(),
        };
        let result = cri.runtime(CALL_TIMEOUT, |mut c| async move {
            c.run_pod_sandbox(request).await
        });
        // The pod's own directories are there now: nobody removes the shared ones.
        drop(making);
        let id = match named(&format!("RunPodSandbox {name} (handler {handler})"), result) {
            Ok(response) => response.pod_sandbox_id,
            Err(e) => {
                remove_pod_dirs(&log_dir, &cgroup_parent);
                return Err(e);
            }
        };
        Ok(Self {
            cri,
            id,
            handler: handler.to_owned(),
            config,
            log_dir,
            cgroup_parent,
            removed: false,
        })
    }

    /// The client, for calls this type has no helper for.
    pub fn cri(&mut self) -> &mut Cri {
        &mut self.cri
    }

    /// The pod's cgroup, as given to CRI (`cgroup_parent`).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// PodSandboxStatus with the verbose `info` (containerd's view: pid, spec, netns).
    pub fn status(&mut self) -> Result<PodSandboxStatusResponse> {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: self.id.clone(),
            verbose: true,
        };
        named(
            &format!("PodSandboxStatus {}", self.id),
            self.cri.runtime(CALL_TIMEOUT, |mut c| async move {
                c.pod_sandbox_status(request).await
            }),
        )
    }

    /// The pod's IP, from PodSandboxStatus.
    pub fn ip(&mut self) -> Result<String> {
        self.status()?
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .context("the pod has no IP")
    }

    /// CreateContainer in this pod; returns the container id.
    pub fn create_container(&mut self, spec: &ContainerSpec) -> Result<String> {
        // The pod imported the common images; any other one is imported on first use.
        let image = match &spec.image {
            ContainerImage::Imported(image) => {
                image.ensure_imported()?;
                image.reference.to_owned()
            }
            ContainerImage::Pulled(reference) => reference.clone(),
        };
        let mut security = spec.security.clone();
        if security.namespace_options.is_none() {
            security.namespace_options = Some(kubelet_namespaces());
        }
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: spec.name.clone(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image,
                ..Default::default()
            }),
            args: spec.args.clone(),
            annotations: spec.annotations.clone(),
            log_path: format!("{}.log", spec.name),
            mounts: spec.mounts.clone(),
            stdin: spec.stdin,
            linux: Some(LinuxContainerConfig {
                security_context: Some(security),
                resources: (spec.memory_limit != 0).then(|| LinuxContainerResources {
                    memory_limit_in_bytes: spec.memory_limit,
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let request = CreateContainerRequest {
            pod_sandbox_id: self.id.clone(),
            config: Some(config),
            sandbox_config: Some(self.config.clone()),
        };
        let response = named(
            &format!("CreateContainer {} in pod {}", spec.name, self.id),
            self.cri.runtime(CALL_TIMEOUT, |mut c| async move {
                c.create_container(request).await
            }),
        )?;
        Ok(response.container_id)
    }

    pub fn start_container(&mut self, id: &str) -> Result<()> {
        let request = StartContainerRequest {
            container_id: id.to_owned(),
        };
        named(
            &format!("StartContainer {id}"),
            self.cri.runtime(CALL_TIMEOUT, |mut c| async move {
                c.start_container(request).await
            }),
        )?;
        Ok(())
    }

    /// CreateContainer + StartContainer.
    pub fn run_container(&mut self, spec: &ContainerSpec) -> Result<String> {
        let id = self.create_container(spec)?;
        self.start_container(&id)?;
        Ok(id)
    }

    pub fn container_status(&mut self, id: &str) -> Result<ContainerStatus> {
        self.container_status_response(id, false)?
            .status
            .with_context(|| format!("ContainerStatus {id} answered without a status"))
    }

    /// The OCI runtime spec containerd gave the shim for container `id` (from the verbose
    /// ContainerStatus).
    pub fn runtime_spec(&mut self, id: &str) -> Result<serde_json::Value> {
        Ok(self.container_info(id)?["runtimeSpec"].clone())
    }

    /// containerd's view of container `id`: the `info` of the verbose ContainerStatus.
    fn container_info(&mut self, id: &str) -> Result<serde_json::Value> {
        let response = self.container_status_response(id, true)?;
        let info = response
            .info
            .get("info")
            .with_context(|| format!("verbose ContainerStatus {id} has no `info`"))?;
        serde_json::from_str(info)
            .with_context(|| format!("ContainerStatus {id} `info` is not JSON"))
    }

    /// The host pid of the init process of container `id` (None: of the sandbox, pause).
    /// containerd reports pids in its own pid namespace; this finds the process with that
    /// pid there among the descendants of the pod's shim.
    pub fn init_host_pid(&mut self, id: Option<&str>) -> Result<u32> {
        let (what, info) = match id {
            Some(id) => (format!("container {id}"), self.container_info(id)?),
            None => {
                let status = self.status()?;
                let info = status
                    .info
                    .get("info")
                    .context("PodSandboxStatus (verbose) has no `info`")?;
                let info =
                    serde_json::from_str(info).context("PodSandboxStatus `info` is not JSON")?;
                (format!("the sandbox of pod {}", self.id), info)
            }
        };
        let pid = info["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|pid| *pid != 0)
            .with_context(|| format!("containerd reports no pid for {what}"))?;
        let shims = shims_of(&self.id);
        shims
            .iter()
            .flat_map(|shim| procfs::process_tree(*shim))
            .map(|process| process.pid)
            .find(|host_pid| pid_in_containerd(*host_pid) == Some(pid))
            .with_context(|| {
                format!(
                    "no process below the pod's shims {shims:?} has pid {pid} ({what}) in \
                     containerd's pid namespace"
                )
            })
    }

    fn container_status_response(
        &mut self,
        id: &str,
        verbose: bool,
    ) -> Result<k8s_cri::v1::ContainerStatusResponse> {
        let request = ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose,
        };
        named(
            &format!("ContainerStatus {id}"),
            self.cri.runtime(CALL_TIMEOUT, |mut c| async move {
                c.container_status(request).await
            }),
        )
    }

    /// Polls ContainerStatus until the container is in `state`.
    pub fn wait_for_state(
        &mut self,
        id: &str,
        state: ContainerState,
        timeout: Duration,
    ) -> Result<ContainerStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.container_status(id)?;
            if status.state == state as i32 {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "container {id} is {:?} after {timeout:?}, expected {state:?}: {status:?}",
                    ContainerState::try_from(status.state)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// ListContainers of this pod.
    pub fn list_containers(&mut self) -> Result<Vec<k8s_cri::v1::Container>> {
        let request = ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: self.id.clone(),
                ..Default::default()
            }),
        };
        Ok(named(
            &format!("ListContainers of pod {}", self.id),
            self.cri.runtime(CALL_TIMEOUT, |mut c| async move {
                c.list_containers(request).await
            }),
        )?
        .containers)
    }

    /// ExecSync with CRI's `timeout` (seconds, 0 = none); the raw result so that tests can
    /// look at the status of a failed call.
    pub fn exec_sync(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout_secs: i64,
    ) -> CallResult<ExecSyncResponse> {
        let request = ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: cmd.iter().map(|a| (*a).to_owned()).collect(),
            timeout: timeout_secs,
        };
        // The client waits longer than the exec may run, so CRI's own timeout is what shows.
        let deadline = CALL_TIMEOUT + Duration::from_secs(timeout_secs.unsigned_abs());
        self.cri
            .runtime(deadline, |mut c| async move { c.exec_sync(request).await })
    }

    /// StopContainer with a grace period in seconds (SIGTERM, then SIGKILL after it).
    pub fn stop_container(&mut self, id: &str, grace_secs: i64) -> CallResult<()> {
        let request = StopContainerRequest {
            container_id: id.to_owned(),
            timeout: grace_secs,
        };
        let deadline = CALL_TIMEOUT + Duration::from_secs(grace_secs.unsigned_abs());
        self.cri
            .runtime(
                deadline,
                |mut c| async move { c.stop_container(request).await },
            )
            .map(drop)
    }

    pub fn remove_container(&mut self, id: &str) -> CallResult<()> {
        let request = RemoveContainerRequest {
            container_id: id.to_owned(),
        };
        self.cri
            .runtime(CALL_TIMEOUT, |mut c| async move {
                c.remove_container(request).await
            })
            .map(drop)
    }

    /// StopPodSandbox: stops every container of the pod and tears down its network.
    pub fn stop(&mut self) -> CallResult<()> {
        let request = StopPodSandboxRequest {
            pod_sandbox_id: self.id.clone(),
        };
        self.cri
            .runtime(CALL_TIMEOUT, |mut c| async move {
                c.stop_pod_sandbox(request).await
            })
            .map(drop)
    }

    /// RemovePodSandbox: removes the pod and its containers.
    pub fn remove(&mut self) -> CallResult<()> {
        let request = RemovePodSandboxRequest {
            pod_sandbox_id: self.id.clone(),
        };
        let result = self
            .cri
            .runtime(CALL_TIMEOUT, |mut c| async move {
                c.remove_pod_sandbox(request).await
            })
            .map(drop);
        if result.is_ok() {
            self.removed = true;
        }
        result
    }

    /// Where CRI writes the log of the container named `name` (CRI log format).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// The pod's log directory (PodSandboxConfig.log_directory).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(status) = self.stop() {
                eprintln!("cleanup: StopPodSandbox {} failed: {status}", self.id);
            }
            if let Err(status) = self.remove() {
                eprintln!("cleanup: RemovePodSandbox {} failed: {status}", self.id);
            }
        }
        remove_pod_dirs(&self.log_dir, &self.cgroup_parent);
    }
}

/// The pid of host process `host_pid` in containerd's pid namespace (the second field of
/// `NSpid`: containerd runs in a pid namespace of its own).
fn pid_in_containerd(host_pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))
        .and_then(|pids| pids.split_whitespace().nth(1)?.parse().ok())
}

/// Removes what the test made for a pod besides CRI's objects: the log directory and the
/// pod's cgroup (empty once its containers are gone; a non-empty one is left for
/// [`crate::leftovers`] to report).
fn remove_pod_dirs(log_dir: &Path, cgroup_parent: &str) {
    if let Err(e) = std::fs::remove_dir_all(log_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("cleanup: cannot remove {}: {e}", log_dir.display());
    }
    let relative = cgroup_parent.trim_start_matches('/');
    let shared = CGROUP_ROOT.trim_start_matches('/');
    let roots = shim_conformance::leftovers::cgroup_roots();
    for root in &roots {
        // Fails harmlessly where the dir is absent: in hierarchies nothing used.
        let _ = std::fs::remove_dir(root.join(relative));
    }
    // The shared parents go with the last pod (fails harmlessly while others exist).
    let _removing = SHARED_DIRS.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(parent) = log_dir.parent() {
        let _ = std::fs::remove_dir(parent);
    }
    for root in &roots {
        let _ = std::fs::remove_dir(root.join(shared));
    }
}
