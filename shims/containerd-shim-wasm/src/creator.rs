//! Creates a container from a fresh, single-threaded process.
//!
//! The shim is multi-threaded (ttrpc, reaper, events), and `libcontainer` forks. Forking a
//! multi-threaded process and doing real work in the child is undefined behaviour, so the shim
//! runs `create` (and exec) in a helper: a worker forked by the zygote (zygote.rs), or the shim
//! binary re-executed with [`HELPER_ARG`] when there is no zygote. The helper resolves and
//! compiles the workload, builds the container with `libcontainer` (whose init process then
//! waits for `start`), prints a [`Created`] line and exits. The init process is re-parented to
//! the shim, which is a child subreaper.
//!
//! The helper's stderr is the shim log; it is also kept as descriptor 3 of a Wasm container's
//! init process, so the engine's errors (traps) reach the shim log.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use log::{debug, error, info, warn};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::executor::{Prepared, ShimExecutor};
use crate::rootfs::{self, RootfsMount};
use crate::stdio::StdioPaths;
use crate::workload::{self, Kind};
use crate::zygote::{Worker, Zygote};

/// The first argument that turns the shim binary into the create helper.
pub const HELPER_ARG: &str = "create-container";

/// The descriptor the shim log has in the helper and in a Wasm container's init process.
const LOG_FD: i32 = 3;

/// What the shim asks the helper to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRequest {
    pub id: String,
    pub bundle: PathBuf,
    /// The snapshot's mounts, mounted at `<bundle>/rootfs` by the helper.
    pub rootfs: Vec<RootfsMount>,
    /// `libcontainer`'s state root; the container's state is `<root>/<id>`.
    pub state_root: PathBuf,
    pub systemd_cgroup: bool,
    pub stdio: StdioPaths,
    /// For a process with a terminal: where the pty master goes (the stdio is then the pty).
    pub console_socket: Option<PathBuf>,
    pub debug: bool,
}

/// What the shim asks the helper to start in a running container: an exec process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub container_id: String,
    pub exec_id: String,
    pub state_root: PathBuf,
    /// The OCI process spec that containerd sent, as JSON.
    pub process: serde_json::Value,
    pub stdio: StdioPaths,
    pub console_socket: Option<PathBuf>,
    pub debug: bool,
}

/// A job for the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum HelperRequest {
    Create(CreateRequest),
    Exec(ExecRequest),
}

impl HelperRequest {
    fn container_id(&self) -> &str {
        match self {
            HelperRequest::Create(r) => &r.id,
            HelperRequest::Exec(r) => &r.container_id,
        }
    }

    /// What the helper works on, for messages.
    fn subject(&self) -> String {
        match self {
            HelperRequest::Create(r) => format!("container {}", r.id),
            HelperRequest::Exec(r) => {
                format!("exec process {} of container {}", r.exec_id, r.container_id)
            }
        }
    }

    /// Where the helper runs: a directory that exists for as long as the helper does.
    fn working_dir(&self) -> &Path {
        match self {
            HelperRequest::Create(r) => &r.bundle,
            HelperRequest::Exec(r) => &r.state_root,
        }
    }

    fn debug(&self) -> bool {
        match self {
            HelperRequest::Create(r) => r.debug,
            HelperRequest::Exec(r) => r.debug,
        }
    }
}

/// The helper's answer: one JSON line on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Created {
    Ok { pid: i32, kind: Kind },
    Err { message: String },
}

/// Shim side: how the shim runs helpers: through the zygote (see zygote.rs) while it is
/// there, else by re-executing the shim binary.
pub struct Helpers {
    shim_log: File,
    zygote: Option<Zygote>,
    /// Set when the zygote failed once: a dead or stuck zygote is not asked again (a stuck one
    /// would cost every request the wait for its worker).
    zygote_failed: AtomicBool,
}

impl Helpers {
    /// Starts the zygote in `working_dir`; without one every helper is re-executed.
    pub fn start(shim_log: File, working_dir: &Path) -> Helpers {
        let zygote = Zygote::spawn(working_dir, &shim_log)
            .inspect_err(|e| warn!("start the helper zygote: {e:#}; helpers are re-executed"))
            .ok();
        Helpers {
            shim_log,
            zygote,
            zygote_failed: AtomicBool::new(false),
        }
    }

    /// Runs `request` in a helper and waits for its answer: the pid of the process it
    /// started (a child of the shim once the helper is gone) and what it runs.
    pub fn run(&self, request: &HelperRequest) -> anyhow::Result<(i32, Kind)> {
        let json = serde_json::to_string(request)?;
        let zygote = self
            .zygote
            .as_ref()
            .filter(|_| !self.zygote_failed.load(Ordering::Relaxed));
        if let Some(zygote) = zygote {
            match zygote.worker() {
                Ok(Worker { mut stream, pidfd }) => {
                    crate::zygote::send_request(&mut stream, &json)
                        .context("send the request to the zygote's worker")?;
                    return answer(request, stream, Some(pidfd));
                }
                Err(e) => {
                    self.zygote_failed.store(true, Ordering::Relaxed);
                    warn!(
                        id = request.container_id();
                        "{}: {e:#}; re-executing the helper instead, from now on",
                        request.subject()
                    );
                }
            }
        }
        self.run_reexecuted(request, &json)
    }

    fn run_reexecuted(&self, request: &HelperRequest, json: &str) -> anyhow::Result<(i32, Kind)> {
        let exe = std::env::current_exe().context("locate the shim binary")?;
        let mut child = Command::new(&exe)
            // Not the shim's working directory, which another thread's libcontainer start
            // may have changed for a moment (see cwd.rs).
            .current_dir(request.working_dir())
            .arg(HELPER_ARG)
            .arg(json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                self.shim_log
                    .try_clone()
                    .context("duplicate the shim log")?,
            )
            .spawn()
            .with_context(|| format!("run {} {HELPER_ARG}", exe.display()))?;
        // The shim's reaper collects the helper; its pidfd tells when it is gone, and so
        // when the container's init process has become the shim's child.
        let helper = crate::reaper::pidfd_open(child.id() as i32).ok();
        let stdout = child.stdout.take().expect("stdout is piped");
        answer(request, stdout, helper)
    }
}

/// Reads a helper's answer line and waits until the helper (`helper`, a pidfd) is gone.
fn answer(
    request: &HelperRequest,
    output: impl std::io::Read,
    helper: Option<std::os::fd::OwnedFd>,
) -> anyhow::Result<(i32, Kind)> {
    let mut line = String::new();
    BufReader::new(output)
        .read_line(&mut line)
        .context("read the helper's answer")?;
    if let Some(helper) = helper {
        crate::reaper::wait_gone(helper).context("wait for the helper to exit")?;
    }
    match serde_json::from_str::<Created>(&line) {
        Ok(Created::Ok { pid, kind }) => Ok((pid, kind)),
        Ok(Created::Err { message }) => Err(anyhow!(message)),
        Err(_) => bail!(
            "the helper for {} died without an answer (see the shim log)",
            request.subject()
        ),
    }
}

/// Helper side: the whole life of the helper process. `engine` is the zygote's, made before
/// the fork; without one the helper makes its own.
pub fn helper_main<E: Engine>(request_json: &str, engine: Option<E>) -> ! {
    // Descriptor 3 becomes the log before anything else can take that number.
    // SAFETY: descriptors 2 and 3 are ours; dup2 does not touch memory.
    let log_ok = unsafe { libc::dup2(2, LOG_FD) } == LOG_FD;
    if log_ok {
        // SAFETY: LOG_FD was just created by dup2 and is owned by nobody else.
        let log = unsafe { File::from_raw_fd(LOG_FD) };
        crate::shim_log::ShimLogger::install(log);
    }
    let answer = match serde_json::from_str::<HelperRequest>(request_json) {
        Ok(request) => {
            log::set_max_level(if request.debug() {
                log::LevelFilter::Debug
            } else {
                log::LevelFilter::Info
            });
            let done = std::env::set_current_dir(request.working_dir())
                .with_context(|| format!("enter {}", request.working_dir().display()))
                .and_then(|()| match &request {
                    HelperRequest::Create(create_request) => create(create_request, engine),
                    HelperRequest::Exec(exec_request) => exec(exec_request, engine),
                });
            match done {
                Ok((pid, kind)) => Created::Ok { pid, kind },
                Err(e) => {
                    let message = format!("{e:#}");
                    let id = request.container_id();
                    error!(id; "{}: {message}", request.subject());
                    Created::Err { message }
                }
            }
        }
        Err(e) => Created::Err {
            message: format!("invalid helper request: {e}"),
        },
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{}",
        serde_json::to_string(&answer).expect("serializable")
    );
    let _ = stdout.flush();
    std::process::exit(if matches!(answer, Created::Ok { .. }) {
        0
    } else {
        1
    })
}

fn create<E: Engine>(request: &CreateRequest, engine: Option<E>) -> anyhow::Result<(i32, Kind)> {
    let id = &request.id;
    let began = Instant::now();
    // On failure the shim unmounts whatever was mounted.
    rootfs::mount_all(&request.bundle.join("rootfs"), &request.rootfs)?;
    let mounted = Instant::now();
    let (spec_json, spec) = load_spec_json(&request.bundle)?;
    let rootfs = rootfs_path(&spec, &request.bundle)?;
    let (workload, executor) = prepare(&spec, &rootfs, id, engine)?;
    let prepared = Instant::now();
    // State under this id can only be a crashed shim's (containerd's ids are unique, and the
    // shim refused a second create of a live one): it must not block the new container.
    if request.state_root.join(id).exists() {
        warn!(id = id.as_str(); "container {id}: removing the state a crashed shim left in {}", request.state_root.display());
        crate::container::remove_state(&request.state_root, id);
    }
    std::fs::create_dir_all(&request.state_root)
        .with_context(|| format!("create state directory {}", request.state_root.display()))?;
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_deref());
    let systemd_running = Path::new("/run/systemd/system").exists();
    let systemd = systemd_cgroup_driver(request.systemd_cgroup, cgroups_path, systemd_running)
        .with_context(|| format!("container {id}"))?;
    crate::spec_compat::rewrite_for_libcontainer(&request.bundle, spec_json, &rootfs, systemd)
        .with_context(|| format!("container {id}"))?;
    let builder = base_builder(id, &request.state_root, executor, workload.kind)?;
    let built = with_stdio(builder, request.console_socket.as_deref(), &request.stdio)?
        .as_init(&request.bundle)
        .with_systemd(systemd)
        .with_detach(true)
        .build();
    // On failure the shim removes what libcontainer may have left (state directory, cgroup).
    let container = built
        .map_err(|e| anyhow!(e).context(format!("create container {id} with libcontainer")))?;
    let pid = container
        .pid()
        .ok_or_else(|| anyhow!("libcontainer created container {id} without an init pid"))?
        .as_raw();
    info!(id = id.as_str(); "created {:?} container {id} running {}, init pid {pid}", workload.kind, workload.entrypoint.path);
    debug!(
        id = id.as_str();
        "create phases of {id}: rootfs mount {:?}, spec and workload {:?}, container (namespaces, cgroup, mounts, init) {:?}",
        mounted - began,
        prepared - mounted,
        prepared.elapsed()
    );
    Ok((pid, workload.kind))
}

/// Starts an exec process in the running container `request.container_id`, in its
/// namespaces and cgroup, with the engine for a module. args[0] is resolved in the rootfs
/// mounted at create (`/proc/<pid>/root` would show volumes too, but `safe-path` resolves
/// that magic link to the reader's own root).
fn exec<E: Engine>(request: &ExecRequest, engine: Option<E>) -> anyhow::Result<(i32, Kind)> {
    let id = &request.container_id;
    let exec_id = &request.exec_id;
    let began = Instant::now();
    let mut process: oci_spec::runtime::Process =
        serde_json::from_value(request.process.clone())
            .context("the exec's process spec is not an OCI process")?;
    let container = libcontainer::container::Container::load(request.state_root.join(id))
        .with_context(|| format!("load the state of container {id}"))?;
    let mut spec = load_spec(container.bundle())?;
    refuse_outside_user_namespace(&spec)
        .with_context(|| format!("exec process {exec_id} of container {id}"))?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let exec_filter = crate::exec_seccomp::plan(seccomp, &mut process)
        .with_context(|| format!("exec process {exec_id} of container {id}"))?;
    spec.set_process(Some(process.clone()));
    let rootfs = rootfs_path(&spec, container.bundle())?;
    let (workload, mut executor) = prepare(&spec, &rootfs, id, engine)?;
    executor.exec_filter = exec_filter;
    let prepared = Instant::now();
    let builder = base_builder(id, &request.state_root, executor, workload.kind)?;
    let builder = with_stdio(builder, request.console_socket.as_deref(), &request.stdio)?;
    // libcontainer reads a tenant's full process spec (user, capabilities, rlimits...) from a
    // file, as runc exec does.
    if exec_id.contains('/') || exec_id.starts_with('.') {
        bail!("invalid exec id {exec_id:?}");
    }
    let process_file = request
        .state_root
        .join(id)
        .join(format!("exec-{exec_id}.json"));
    // The process as planned: with the capabilities lent to load the seccomp filter, if any.
    let process_json = serde_json::to_vec(&process)?;
    std::fs::write(&process_file, process_json)
        .with_context(|| format!("write {}", process_file.display()))?;
    let built = builder
        .as_tenant()
        .with_process(Some(&process_file))
        .with_detach(true)
        .build();
    let _ = std::fs::remove_file(&process_file);
    let pid = built
        .map_err(|e| {
            anyhow!(e).context(format!(
                "start exec process {exec_id} in container {id} with libcontainer"
            ))
        })?
        .as_raw();
    info!(id = id.as_str(); "exec process {exec_id} of container {id} runs {} ({:?}), pid {pid}", workload.entrypoint.path, workload.kind);
    debug!(
        id = id.as_str();
        "exec phases of {exec_id} in {id}: spec and workload {:?}, process setup {:?}",
        prepared - began,
        prepared.elapsed()
    );
    Ok((pid, workload.kind))
}

/// An exec process cannot join a container's user namespace: libcontainer 0.7's tenant
/// builder leaves that namespace out, so the process would run in the node's user namespace,
/// as the node's root with the container's capabilities, outside the confinement the
/// container asked for. Refused until it can join.
fn refuse_outside_user_namespace(spec: &Spec) -> anyhow::Result<()> {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    let user = oci_spec::runtime::LinuxNamespaceType::User;
    if namespaces.is_some_and(|nss| nss.iter().any(|ns| ns.typ() == user)) {
        bail!(
            "the container runs in a user namespace, which exec processes cannot join in this \
             shim yet (libcontainer 0.7 would start the process outside it, as the node's \
             root): refused"
        );
    }
    Ok(())
}

/// Whether the container's cgroup is placed through systemd, as runc decides: with the runtime
/// option `SystemdCgroup = true`, and otherwise with cgroupfs, where a `slice:prefix:name`
/// cgroupsPath (CRI writes one for a cgroup parent ending in `.slice`) is a plain path.
/// Docker with its systemd cgroup driver sends that form and, to a runtime other than runc, no
/// option: on a node where systemd runs, the form alone selects systemd.
fn systemd_cgroup_driver(
    option: bool,
    cgroups_path: Option<&Path>,
    systemd_running: bool,
) -> anyhow::Result<bool> {
    if option {
        if !systemd_running {
            bail!(
                "the runtime option SystemdCgroup = true asks for systemd's cgroup driver, but \
                 systemd is not running on this node: remove the option (cgroupfs driver)"
            );
        }
        return Ok(true);
    }
    let slice_form = cgroups_path.is_some_and(|path| is_systemd_form(&path.to_string_lossy()));
    Ok(slice_form && systemd_running)
}

/// systemd's `slice:prefix:name` form of a cgroupsPath.
fn is_systemd_form(path: &str) -> bool {
    !path.starts_with('/') && path.split(':').count() == 3
}

/// What every process the helper starts has in common.
fn base_builder<E: Engine>(
    id: &str,
    state_root: &Path,
    executor: ShimExecutor<E>,
    kind: Kind,
) -> anyhow::Result<ContainerBuilder> {
    let builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_root_path(state_root)
        .map_err(|e| anyhow!(e).context(format!("state root {}", state_root.display())))?;
    Ok(builder
        .with_executor(executor)
        // Only a Wasm runtime keeps the shim log; a native program gets no extra fd.
        .with_preserved_fds(if kind == Kind::Wasm { 1 } else { 0 }))
}

/// The process's stdio: the task's FIFOs, or with a terminal the pty that its init creates
/// and sends to the console socket.
fn with_stdio(
    builder: ContainerBuilder,
    console_socket: Option<&Path>,
    stdio: &StdioPaths,
) -> anyhow::Result<ContainerBuilder> {
    if let Some(socket) = console_socket {
        return Ok(builder.with_console_socket(Some(socket)));
    }
    let [stdin, stdout, stderr] = stdio.open_for_process().context("open the stdio")?;
    Ok(builder
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr))
}

/// What the process will run: args[0] resolved in the rootfs and, for a module, compiled (or
/// loaded from the cache) and linked, so that every error a user can fix comes now.
fn prepare<E: Engine>(
    spec: &Spec,
    rootfs: &Path,
    id: &str,
    engine: Option<E>,
) -> anyhow::Result<(workload::Workload, ShimExecutor<E>)> {
    let began = Instant::now();
    let workload = workload::resolve(spec, rootfs)?;
    if workload.kind == Kind::Wasm {
        crate::preopens::check(spec, rootfs, E::READ_ONLY_PREOPENS)?;
    }
    let resolved = Instant::now();
    let prepared = match workload.kind {
        Kind::Native => Prepared::Native,
        Kind::Wasm => prepare_wasm(&workload, id, engine)?,
    };
    debug!(
        id;
        "workload of {id}: resolve {:?}, module load {:?}",
        resolved - began,
        resolved.elapsed()
    );
    let executor = ShimExecutor {
        container_id: id.to_string(),
        prepared,
        exec_filter: None,
    };
    Ok((workload, executor))
}

fn prepare_wasm<E: Engine>(
    workload: &workload::Workload,
    container: &str,
    engine: Option<E>,
) -> anyhow::Result<Prepared<E>> {
    let path = &workload.entrypoint.path;
    let bytes = crate::module_size::read_module(&workload.host_path, path)?;
    let engine = match engine {
        Some(engine) => engine,
        None => E::new().with_context(|| format!("start the {} engine", E::NAME))?,
    };
    if !engine.can_run(&bytes) {
        bail!(
            "{path}: the {} engine cannot run this kind of WebAssembly binary",
            E::NAME
        );
    }
    let before = open_descriptors()?;
    let module = crate::cache::compile(&engine, &bytes, &workload.entrypoint.func, container)
        .with_context(|| format!("{path}: invalid WebAssembly module"))?;
    let engine_fds = open_descriptors()?
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .collect();
    Ok(Prepared::Wasm {
        engine,
        module: Arc::new(module),
        entrypoint: workload.entrypoint.clone(),
        engine_fds,
    })
}

/// The descriptors open in this process (from `/proc/self/fd`, less the one reading it).
fn open_descriptors() -> anyhow::Result<Vec<RawFd>> {
    const DIR: &str = "/proc/self/fd";
    let mut dir = nix::dir::Dir::open(
        DIR,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("list the open descriptors in {DIR}"))?;
    let own = dir.as_raw_fd();
    Ok(dir
        .iter()
        .filter_map(|entry| entry.ok()?.file_name().to_str().ok()?.parse().ok())
        .filter(|fd| *fd != own)
        .collect())
}

/// Reads `config.json` with a message that says which bundle and what is wrong.
fn load_spec(bundle: &Path) -> anyhow::Result<Spec> {
    Ok(load_spec_json(bundle)?.1)
}

/// Reads `config.json` once: as JSON (what [`crate::spec_compat`] rewrites, unknown fields
/// kept) and as the OCI spec it holds.
fn load_spec_json(bundle: &Path) -> anyhow::Result<(serde_json::Value, Spec)> {
    let path = bundle.join("config.json");
    let malformed = || format!("{}: malformed OCI runtime spec", path.display());
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_slice(&text).with_context(malformed)?;
    let spec = Spec::deserialize(&json).with_context(malformed)?;
    Ok((json, spec))
}

fn rootfs_path(spec: &Spec, bundle: &Path) -> anyhow::Result<PathBuf> {
    let root = spec.root().as_ref().ok_or_else(|| {
        anyhow!(
            "{}: the spec has no root",
            bundle.join("config.json").display()
        )
    })?;
    Ok(bundle.join(root.path()))
}

/// Shim side: the shim log's writer end for the helper, or /dev/null when there is none.
pub fn open_shim_log() -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log")
    {
        Ok(file) => file,
        Err(e) => {
            log::warn!(
                "open the shim log FIFO `log` for the create helpers: {e}; their log is lost"
            );
            std::fs::OpenOptions::new().write(true).open("/dev/null")?
        }
    };
    // Writes must block rather than fail with EAGAIN when containerd is slow to read.
    fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(OFlag::empty()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_is_refused_in_a_user_namespace_only() {
        use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceBuilder, LinuxNamespaceType};
        let spec_with = |types: &[LinuxNamespaceType]| {
            let namespaces = types
                .iter()
                .map(|t| LinuxNamespaceBuilder::default().typ(*t).build().unwrap())
                .collect::<Vec<_>>();
            let linux = LinuxBuilder::default()
                .namespaces(namespaces)
                .build()
                .unwrap();
            let mut spec = Spec::default();
            spec.set_linux(Some(linux));
            spec
        };
        let plain = spec_with(&[LinuxNamespaceType::Pid, LinuxNamespaceType::Mount]);
        assert!(refuse_outside_user_namespace(&plain).is_ok());
        let user = spec_with(&[LinuxNamespaceType::Mount, LinuxNamespaceType::User]);
        let error = refuse_outside_user_namespace(&user).unwrap_err();
        assert!(format!("{error}").contains("user namespace"), "{error}");
    }

    #[test]
    fn the_cgroup_driver_is_chosen_as_runc_chooses_it() {
        let slice = Some(Path::new("test.slice:cri-containerd:abc"));
        let plain = Some(Path::new("/kubepods/pod1/abc"));
        let relative = Some(Path::new("test.slice/abc"));
        // (SystemdCgroup option, cgroupsPath, systemd running, systemd driver?)
        let cases = [
            (false, slice, false, false),
            (false, plain, false, false),
            (false, relative, false, false),
            (false, None, false, false),
            (false, slice, true, true),
            (false, plain, true, false),
            (true, slice, true, true),
            (true, plain, true, true),
            (true, None, true, true),
        ];
        for (option, path, running, systemd) in cases {
            let chosen = systemd_cgroup_driver(option, path, running).unwrap();
            assert_eq!(
                chosen, systemd,
                "option {option}, path {path:?}, running {running}"
            );
        }
        for path in [slice, plain, None] {
            let error = systemd_cgroup_driver(true, path, false).unwrap_err();
            assert!(format!("{error}").contains("SystemdCgroup"), "{error}");
        }
    }
}
