//! The shim process's life: `start` (spawn or join the pod's shim), `delete` (clean up after a
//! dead shim), serving the Task service, `-v` and `-info`.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::write_address;
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};
use log::warn;

use crate::dead_shim;
use crate::shim::events::Events;
use crate::shim::helpers::Helpers;
use crate::shim::options::{recorded_state_root, state_root};
use crate::shim::reaper::Reaper;
use crate::shim::rootfs::MountedRootfs;
use crate::shim::runtime::Libcontainer;
use crate::shim::task::TaskService;
use crate::shim::telemetry::{self, Traced};
use crate::shim_log::ShimLogger;

/// Annotations whose value names the shim a container joins (one shim per pod).
const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

/// `io.containerd.<engine>.<version>`, e.g. `io.containerd.wasmtime.v1`.
pub fn runtime_id(engine: &str, version: &str) -> String {
    format!("io.containerd.{engine}.{version}")
}

/// `containerd-shim-<engine>-<version>`, the binary containerd looks for on its `PATH` for
/// [`runtime_id`].
pub fn binary_name(engine: &str, version: &str) -> String {
    format!("containerd-shim-{engine}-{version}")
}

pub struct WasmShim {
    engine: String,
    namespace: String,
    id: String,
    /// `-socket`: the ttrpc socket this shim serves.
    socket: String,
    /// `-address`: containerd's gRPC socket.
    containerd_address: String,
    debug: bool,
    exit: Arc<ExitSignal>,
    /// The task service's event queue, flushed before the shim exits.
    events: OnceLock<Events>,
}

/// The monotonic clock when containerd's `start` began, in nanoseconds, passed to the shim
/// process it spawns: the debug log then tells how long starting a shim took.
const START_NS_ENV: &str = "WASM_SHIM_START_NS";

fn monotonic_ns() -> Option<i128> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    Some(now.tv_sec() as i128 * 1_000_000_000 + now.tv_nsec() as i128)
}

/// How long an exiting shim waits for its last events to reach containerd.
const EVENTS_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the ttrpc server may take to stop once the shim has shut down.
const SERVER_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The configuration `containerd_shim::run` must get: the library reaps children itself and
/// sets up the shim log (shim_log.rs says why).
pub fn shim_config() -> Config {
    Config {
        no_reaper: true,
        no_setup_logger: true,
        ..Default::default()
    }
}

/// The runtime options containerd writes to `start`'s standard input (as a protobuf `Any`), as
/// the JSON the serving shim's helper zygote reads to build its engine. Empty when there are
/// none or they are not valid: `create` gets them again and reports the error.
fn options_from_stdin() -> String {
    let mut bytes = Vec::new();
    if std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).is_err() || bytes.is_empty() {
        return String::new();
    }
    let Ok(any) = Any::parse_from_bytes(&bytes) else {
        return String::new();
    };
    crate::config::Options::from_any(Some(&any), "the shim")
        .ok()
        .and_then(|options| serde_json::to_string(&options).ok())
        .unwrap_or_default()
}

impl containerd_shim::Shim for WasmShim {
    type T = Traced<TaskService<Events>>;

    fn new(runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        // `io.containerd.<engine>.<version>`: the engine names the state directory.
        let engine = runtime_id
            .strip_prefix("io.containerd.")
            .and_then(|s| s.rsplit_once('.'))
            .map_or(runtime_id, |(engine, _version)| engine)
            .to_string();
        WasmShim {
            engine,
            namespace: args.namespace.clone(),
            id: args.id.clone(),
            socket: args.socket.clone(),
            containerd_address: args.address.clone(),
            debug: args.debug,
            exit: Arc::new(ExitSignal::default()),
            events: OnceLock::new(),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        // containerd runs `start` in the container's bundle.
        let began = monotonic_ns();
        let grouping = group_of(Path::new("config.json")).unwrap_or_else(|| opts.id.clone());
        // A pod's shim already serving: give containerd its address. The crate's `spawn` would
        // start a whole shim process (reaper, event publisher, helper zygote) only to find the
        // socket taken and exit; runc's shim checks first too.
        let address = containerd_shim::socket_address(&opts.address, &opts.namespace, &grouping);
        if serving(&address) {
            write_address(&address)?;
            return Ok(address);
        }
        let began = began.map(|ns| ns.to_string()).unwrap_or_default();
        let options = options_from_stdin();
        let (_pid, address) = containerd_shim::spawn(
            opts,
            &grouping,
            vec![
                (START_NS_ENV, began.as_str()),
                (crate::config::OPTIONS_ENV, options.as_str()),
            ],
        )?;
        write_address(&address)?;
        Ok(address)
    }

    /// containerd runs `delete` in the bundle when the shim died: remove what the container
    /// left (processes, cgroup, state directory, rootfs mount).
    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        // containerd runs `delete` in the bundle; mount points are matched by absolute path.
        let bundle = std::env::current_dir().map_err(|err| containerd_shim::Error::IoError {
            context: "find the bundle (the working directory of delete)".to_string(),
            err,
        })?;
        let bundle = bundle.as_path();
        let root = recorded_state_root(bundle)
            .unwrap_or_else(|| state_root("", &self.engine, &self.namespace));
        dead_shim::remove_container(&root, &self.id);
        if let Err(e) = MountedRootfs::of_bundle(bundle).unmount() {
            warn!(id = self.id.as_str(); "container {}: {e:#}", self.id);
        }
        dead_shim::remove_socket(&self.id);
        let now = containerd_shim::util::timestamp()?;
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(now).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.exit.wait();
        if let Some(events) = self.events.get() {
            events.flush(EVENTS_FLUSH_TIMEOUT);
        }
        telemetry::shutdown();
        // The crate removes the socket after this returns, but it finds the socket's path in
        // the bundle, which containerd may already have deleted once Shutdown answered.
        let path = socket_path(&self.socket);
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!("remove the shim socket {path}: {e}");
        }
        exit_if_still_here_after(&self.id, SERVER_STOP_TIMEOUT);
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Traced<TaskService<Events>> {
        let fatal = |what: &str, e: std::io::Error| -> ! {
            log::error!("shim {}: {what}: {e}", self.id);
            std::process::exit(1)
        };
        // The crate calls this first when it serves, where it would set up its own logger;
        // like the crate, a shim without its log does not serve.
        if let Err(e) = ShimLogger::install_for_shim(self.debug) {
            eprintln!(
                "shim {}: open the shim log (`log` in the bundle): {e}",
                self.id
            );
            std::process::exit(1)
        }
        // Named after the binary containerd ran (`containerd-shim-wasmtime-v1`).
        let binary = std::env::args().next().unwrap_or_default();
        telemetry::install(binary.rsplit('/').next().unwrap_or_default());
        let reaper = Reaper::start().unwrap_or_else(|e| fatal("start the reaper", e));
        let events = Events::start(publisher, self.namespace.clone())
            .unwrap_or_else(|e| fatal("start the event publisher", e));
        let shim_log =
            crate::shim_log::open_shim_log().unwrap_or_else(|e| fatal("open the shim log", e));
        // containerd starts the shim in the first container's bundle; the zygote only needs a
        // directory that exists now.
        let helpers = Helpers::start(shim_log, Path::new("/"));
        let _ = self.events.set(events.clone());
        let started = std::env::var(START_NS_ENV)
            .ok()
            .and_then(|ns| ns.parse::<i128>().ok());
        if let (Some(started), Some(now)) = (started, monotonic_ns()) {
            log::debug!(
                id = self.id.as_str();
                "shim {} ready to serve {:?} after containerd ran `start`",
                self.id,
                std::time::Duration::from_nanos((now - started).max(0) as u64)
            );
        }
        Traced::new(TaskService::new(
            &self.engine,
            &self.namespace,
            self.debug,
            events,
            reaper,
            Arc::new(Libcontainer {
                helpers,
                containerd_address: self.containerd_address.clone(),
            }),
            Arc::clone(&self.exit),
        ))
    }
}

/// Ends the process if it still runs `timeout` from now. After `wait` the crate stops the
/// ttrpc server, which joins every connection's threads; ttrpc 0.9's synchronous server can
/// lose the wake-up of a connection whose request was in flight when it stopped (its reader
/// and workers see the quit flag and leave without telling the connection's thread), and the
/// join then never returns: seen as a shim, its zygote and its threads left after delete.
/// Everything the shim owes containerd is done by then (containers deleted, events flushed,
/// socket removed).
fn exit_if_still_here_after(shim_id: &str, timeout: std::time::Duration) {
    let id = shim_id.to_owned();
    let watchdog = std::thread::Builder::new()
        .name("exit-watchdog".into())
        .spawn(move || {
            std::thread::sleep(timeout);
            warn!(
                id = id.as_str();
                "shim {id}: the ttrpc server has not stopped {timeout:?} after shutdown: exiting"
            );
            std::process::exit(0)
        });
    if let Err(e) = watchdog {
        warn!(id = shim_id; "shim {shim_id}: start the exit watchdog: {e}");
    }
}

/// Whether a shim accepts connections on `address`.
fn serving(address: &str) -> bool {
    std::os::unix::net::UnixStream::connect(socket_path(address)).is_ok()
}

/// The file of a shim socket address (`unix://PATH`).
fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// The shim group named by the spec's annotations, if any.
fn group_of(config: &Path) -> Option<String> {
    let text = std::fs::read(config).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let annotations = spec.get("annotations")?.as_object()?;
    GROUP_ANNOTATIONS
        .iter()
        .find_map(|key| annotations.get(*key)?.as_str().map(str::to_string))
}

/// `-v`: the version, in the layout other shims use.
pub fn print_version(engine: &str, version: &str, engine_version: &str) {
    println!("{}:", binary_name(engine, version));
    println!("  Version:  {}", env!("CARGO_PKG_VERSION"));
    println!("  Engine:   {engine} {engine_version}");
}

/// `-info`: the runtime info containerd 2 asks for, as protobuf on stdout.
pub fn write_info(engine: &str, version: &str, engine_version: &str) -> std::io::Result<()> {
    let info = RuntimeInfo {
        name: runtime_id(engine, version),
        version: Some(RuntimeVersion {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: format!("{engine} {engine_version}"),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    let bytes = info.write_to_bytes().map_err(std::io::Error::other)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&bytes)?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_share_a_shim_through_the_sandbox_annotation() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(group_of(&config).as_deref(), Some("pod1"));
        std::fs::write(&config, r#"{"annotations":{"other":"x"}}"#).unwrap();
        assert_eq!(group_of(&config), None);
        std::fs::write(&config, "not json").unwrap();
        assert_eq!(group_of(&config), None);
    }

    /// Set in the copy of the test binary that plays a shim stuck after shutdown.
    const STUCK_SHIM_ENV: &str = "WASM_SHIM_TEST_STUCK_AFTER_SHUTDOWN";

    #[test]
    fn a_shim_stuck_after_shutdown_exits_anyway() {
        if std::env::var_os(STUCK_SHIM_ENV).is_some() {
            // The stuck shim: the watchdog must end this process with status 0.
            exit_if_still_here_after("stuck", std::time::Duration::from_millis(100));
            println!("stuck shim waiting");
            std::thread::sleep(std::time::Duration::from_secs(60));
            std::process::exit(3);
        }
        let began = std::time::Instant::now();
        let stuck = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "--nocapture"])
            .arg(format!(
                "{}::a_shim_stuck_after_shutdown_exits_anyway",
                module_path!().split_once("::").unwrap().1
            ))
            .env(STUCK_SHIM_ENV, "1")
            .output()
            .unwrap();
        let output = String::from_utf8_lossy(&stuck.stdout);
        assert!(
            output.contains("stuck shim waiting"),
            "the copy ran: {output}"
        );
        assert_eq!(
            stuck.status.code(),
            Some(0),
            "the stuck copy: {}",
            stuck.status
        );
        assert!(
            began.elapsed() < std::time::Duration::from_secs(30),
            "the stuck copy ran for {:?}",
            began.elapsed()
        );
    }

    #[test]
    fn pod_members_start_finds_the_serving_shim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shim.sock");
        let address = format!("unix://{}", path.display());
        assert!(!serving(&address), "no socket yet");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(serving(&address), "a listening socket serves");
        drop(listener);
        assert!(
            !serving(&address),
            "a socket file nobody listens on does not"
        );
    }

    #[test]
    fn info_is_a_runtime_info_message() {
        let info = RuntimeInfo {
            name: runtime_id("wasmtime", "v1"),
            ..Default::default()
        };
        let back = RuntimeInfo::parse_from_bytes(&info.write_to_bytes().unwrap()).unwrap();
        assert_eq!(back.name, "io.containerd.wasmtime.v1");
        assert_eq!(binary_name("wamr", "v1"), "containerd-shim-wamr-v1");
        assert_eq!(binary_name("spin", "v2"), "containerd-shim-spin-v2");
    }
}
