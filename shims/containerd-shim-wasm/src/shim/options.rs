//! Where the runtime options (`config.rs`) put a container's state, and how `delete` finds it
//! again.

use std::path::{Path, PathBuf};

use crate::config::Options;

/// Where the shim keeps per-container state by default: `<base>/<engine>/<namespace>/<id>`.
const DEFAULT_STATE_BASE: &str = "/run/containerd";

/// The options a container is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Manage cgroups through systemd (`SystemdCgroup = true`), cgroupsPath `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// The state root for the namespace, from `Root` or the default.
    pub state_root: PathBuf,
    /// All of them, for the helper.
    pub options: Options,
}

impl RuntimeOptions {
    /// The state root and cgroup driver of `options`.
    pub fn new(options: Options, engine: &str, namespace: &str) -> Self {
        Self {
            systemd_cgroup: options.systemd_cgroup,
            state_root: state_root(&options.root, engine, namespace),
            options,
        }
    }
}

/// The file in a bundle that keeps the state root its container was created with, so that the
/// `delete` sub-command (which containerd runs without the runtime options) finds the state.
const STATE_ROOT_FILE: &str = "wasm-shim-state-root";

/// Records `state_root` in `bundle` for [`recorded_state_root`].
pub fn record_state_root(bundle: &Path, state_root: &Path) -> anyhow::Result<()> {
    let path = bundle.join(STATE_ROOT_FILE);
    std::fs::write(&path, state_root.as_os_str().as_encoded_bytes())
        .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))
}

/// The state root recorded in `bundle`, if any.
pub fn recorded_state_root(bundle: &Path) -> Option<PathBuf> {
    std::fs::read_to_string(bundle.join(STATE_ROOT_FILE))
        .ok()
        .map(PathBuf::from)
}

/// `<root or /run/containerd/<engine>>/<namespace>`.
pub fn state_root(root: &str, engine: &str, namespace: &str) -> PathBuf {
    let base = if root.is_empty() {
        Path::new(DEFAULT_STATE_BASE).join(engine)
    } else {
        PathBuf::from(root)
    };
    base.join(namespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::Message;
    use containerd_shim::protos::protobuf::well_known_types::any::Any;
    use containerd_shim::protos::shim::oci::Options;

    fn parse(
        options: Option<&Any>,
        runtime: &str,
        engine: &str,
        namespace: &str,
    ) -> anyhow::Result<RuntimeOptions> {
        Ok(RuntimeOptions::new(
            crate::config::Options::from_any(options, runtime)?,
            engine,
            namespace,
        ))
    }

    fn any(options: &Options, type_url: &str) -> Any {
        Any {
            type_url: type_url.to_string(),
            value: options.write_to_bytes().unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn the_state_root_is_recorded_in_the_bundle() {
        let bundle = tempfile::tempdir().unwrap();
        assert_eq!(recorded_state_root(bundle.path()), None);
        record_state_root(bundle.path(), Path::new("/var/run/wasm/k8s.io")).unwrap();
        assert_eq!(
            recorded_state_root(bundle.path()),
            Some(PathBuf::from("/var/run/wasm/k8s.io"))
        );
    }

    #[test]
    fn defaults_without_options() {
        let opts = parse(None, "rt", "wasmtime", "default").unwrap();
        assert!(!opts.systemd_cgroup);
        assert_eq!(
            opts.state_root,
            PathBuf::from("/run/containerd/wasmtime/default")
        );
    }

    #[test]
    fn runc_options_set_systemd_and_root() {
        let runc = Options {
            systemd_cgroup: true,
            root: "/var/run/wasm".into(),
            ..Default::default()
        };
        let opts = parse(
            Some(&any(&runc, "containerd.runc.v1.Options")),
            "rt",
            "wasmtime",
            "k8s.io",
        )
        .unwrap();
        assert!(opts.systemd_cgroup);
        assert_eq!(opts.state_root, PathBuf::from("/var/run/wasm/k8s.io"));
    }

    #[test]
    fn foreign_options_and_garbage_are_errors() {
        let other = Any {
            type_url: "example.v1.Options".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        let err = parse(Some(&other), "rt", "wamr", "x").unwrap_err();
        assert!(err.to_string().contains("example.v1.Options"), "{err}");
        let bad = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![0xff, 0xff, 0xff],
            ..Default::default()
        };
        let err = parse(Some(&bad), "rt", "wamr", "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("runtime options (containerd.runc.v1.Options)"),
            "{err}"
        );
    }
}
