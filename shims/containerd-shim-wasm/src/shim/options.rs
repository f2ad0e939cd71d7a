//! Runtime options from containerd's config. containerd sends the runtime's `options` table
//! as the runc options message (`containerd.runc.v1.Options`), whatever the runtime: that is
//! where `SystemdCgroup` and `Root` arrive.

use std::path::{Path, PathBuf};

use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::shim::oci::Options;

/// Where the shim keeps per-container state by default: `<base>/<engine>/<namespace>/<id>`.
const DEFAULT_STATE_BASE: &str = "/run/containerd";

/// The options this shim honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Manage cgroups through systemd (`SystemdCgroup = true`), cgroupsPath `slice:prefix:name`.
    pub systemd_cgroup: bool,
    /// The state root for the namespace, from `Root` or the default.
    pub state_root: PathBuf,
}

impl RuntimeOptions {
    /// Parses `options` (possibly absent). Other option messages (e.g. CRI's
    /// `runtimeoptions.v1.Options`) carry nothing for us and give the defaults.
    pub fn parse(options: Option<&Any>, engine: &str, namespace: &str) -> anyhow::Result<Self> {
        let runc = match options {
            Some(any) if any.type_url.ends_with("containerd.runc.v1.Options") => {
                Options::parse_from_bytes(&any.value)
                    .map_err(|e| anyhow::anyhow!("runtime options ({}): {e}", any.type_url))?
            }
            _ => Options::default(),
        };
        Ok(Self {
            systemd_cgroup: runc.systemd_cgroup,
            state_root: state_root(&runc.root, engine, namespace),
        })
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
        let opts = RuntimeOptions::parse(None, "wasmtime", "default").unwrap();
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
        let opts = RuntimeOptions::parse(
            Some(&any(&runc, "containerd.runc.v1.Options")),
            "wasmtime",
            "k8s.io",
        )
        .unwrap();
        assert!(opts.systemd_cgroup);
        assert_eq!(opts.state_root, PathBuf::from("/var/run/wasm/k8s.io"));
    }

    #[test]
    fn foreign_options_are_ignored_and_garbage_is_an_error() {
        let other = Any {
            type_url: "runtimeoptions.v1.Options".into(),
            value: vec![1, 2, 3],
            ..Default::default()
        };
        assert!(
            !RuntimeOptions::parse(Some(&other), "wamr", "x")
                .unwrap()
                .systemd_cgroup
        );
        let bad = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![0xff, 0xff, 0xff],
            ..Default::default()
        };
        let err = RuntimeOptions::parse(Some(&bad), "wamr", "x").unwrap_err();
        assert!(
            err.to_string()
                .contains("runtime options (containerd.runc.v1.Options)"),
            "{err}"
        );
    }
}
