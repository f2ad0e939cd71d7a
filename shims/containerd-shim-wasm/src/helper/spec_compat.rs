//! The bundle's spec in the forms `libcontainer` 0.7 reads as runc reads them.
//!
//! - `linux.rootfsPropagation`: containerd's CRI plugin sets `rshared` for a volume with
//!   `Bidirectional` propagation and `rslave` for `HostToContainer`, as runc's mapping allows
//!   (`rshared`, `shared`, `rslave`, `slave`, `rprivate`, `private`, `runbindable`,
//!   `unbindable`). `libcontainer` takes only the short forms and refuses the others ("unknown
//!   rootfs propagation"), though it always applies them recursively, as the `r` forms ask.
//! - `process.noNewPrivileges: false`: `libcontainer` takes the field's presence, not its
//!   value, as "no_new_privs is set" when it orders the seccomp filter, loads the filter after
//!   dropping the capabilities, and fails ("failed to load seccomp context"); runc reads false
//!   as absent. containerd never writes false (Go omits it), other clients may.
//! - The `cgroup` mount (`/sys/fs/cgroup`) of a container that joins an existing PID namespace
//!   (a pod's, CRI's default and Kubernetes' `shareProcessNamespace`), on cgroup v1: to find the
//!   cgroups to show, `libcontainer` reads `/proc/<its pid in the pod's namespace>` in the
//!   shim's `/proc`, which is another process or none ("failed to prepare rootfs" where that
//!   pid does not exist, as when containerd runs in a PID namespace of its own). The mount is
//!   replaced by what runc mounts there: a tmpfs with a bind mount of the container's own cgroup
//!   in each hierarchy (cgroupfs driver only; read-only when the mount was).
//! - A mount's own propagation option (`rprivate`, which containerd and Docker give every
//!   volume by default; `rslave`, `rshared`, …): `libcontainer` reads these options as flags
//!   to clear and applies none, so a volume keeps what the container's root gives it (a slave
//!   of the node's mount, receiving the node's later mounts; a peer of it under `rshared`)
//!   where runc makes it private. The helper adds a `createContainer` hook, the shim binary
//!   run as `set-mount-propagation` (`init/propagation_hook.rs`), which `libcontainer` runs in the container's mount
//!   namespace once every mount is made and before `pivot_root`, with the capabilities to
//!   change a mount's propagation; it applies each mount's option as runc does.
//!
//! The create helper rewrites these in the bundle's `config.json` before `libcontainer` reads
//! it; the exec processes' helpers read the rewritten file. Nothing else in the file changes.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::init::propagation_hook::{PROPAGATION_HOOK_ARG, propagation_flags};

/// The form `libcontainer` takes for a propagation runc takes; `None` for what neither takes
/// (libcontainer then refuses it with its own message) or what needs no change.
fn libcontainer_form(value: &str) -> Option<&'static str> {
    match value {
        "rshared" => Some("shared"),
        "rslave" => Some("slave"),
        "rprivate" => Some("private"),
        "runbindable" => Some("unbindable"),
        _ => None,
    }
}

/// A cgroup v1 hierarchy of the node and the container's cgroup in it.
#[derive(Debug, Clone, PartialEq)]
struct Hierarchy {
    /// Where the node mounts it, e.g. `/sys/fs/cgroup/memory`.
    mount_point: PathBuf,
    /// The container's cgroup, relative to the hierarchy's root.
    cgroup: PathBuf,
}

/// Rewrites what the module comment lists in `spec`, the JSON of `<bundle>/config.json`, and
/// replaces the file if anything changed: by a rename, so a reader sees the old or the new
/// file, never a part. `rootfs`: the container's root, as the spec names it. `systemd`: the
/// container's cgroup is placed through systemd.
/// `edited`: the caller changed `spec` already, so it is written even if nothing here changes.
pub fn rewrite_for_libcontainer(
    bundle: &Path,
    mut spec: serde_json::Value,
    rootfs: &Path,
    systemd: bool,
    edited: bool,
) -> anyhow::Result<()> {
    // The helper's own binary through its /proc link: the helper waits in libcontainer while
    // the container's init runs the hook (before pivot_root, so this /proc is the helper's),
    // and the link still runs the binary after an upgrade replaced the file on disk.
    let shim = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    let path = bundle.join("config.json");
    let hierarchies = |cgroups_path: &str| {
        if systemd {
            return Ok(Vec::new());
        }
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
        Ok(v1_hierarchies(&mountinfo, &own, cgroups_path))
    };
    if !rewrite(&mut spec, hierarchies, &shim, rootfs)? && !edited {
        return Ok(());
    }
    let temporary = bundle.join("config.json.libcontainer");
    let written = serde_json::to_vec(&spec).context("serialise the spec")?;
    std::fs::write(&temporary, written)
        .with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("replace {} with its rewritten spec", path.display()))
}

/// Rewrites `spec` in place; whether anything changed. `hierarchies` gives the node's cgroup v1
/// hierarchies for a cgroupsPath (none on cgroup v2 or with systemd's driver); it is asked only
/// for a spec with a cgroup mount that joins a PID namespace.
fn rewrite(
    spec: &mut serde_json::Value,
    hierarchies: impl FnOnce(&str) -> anyhow::Result<Vec<Hierarchy>>,
    shim: &Path,
    rootfs: &Path,
) -> anyhow::Result<bool> {
    let mut changed = emulate_cgroup_mount(spec, hierarchies)?;
    changed |= add_propagation_hook(spec, shim, rootfs);
    if let Some(value) = spec.pointer_mut("/linux/rootfsPropagation")
        && let Some(form) = value.as_str().and_then(libcontainer_form)
    {
        *value = serde_json::Value::from(form);
        changed = true;
    }
    if let Some(process) = spec.get_mut("process").and_then(|p| p.as_object_mut())
        && process.get("noNewPrivileges") == Some(&serde_json::Value::Bool(false))
    {
        process.remove("noNewPrivileges");
        changed = true;
    }
    Ok(changed)
}

/// Adds the hook that applies each mount's propagation option (see the module comment), as
/// the first `createContainer` hook; whether any mount has one.
fn add_propagation_hook(spec: &mut serde_json::Value, shim: &Path, rootfs: &Path) -> bool {
    let mounts = spec["mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let settings: Vec<String> = mounts
        .iter()
        .filter_map(|m| {
            let destination = m["destination"].as_str()?;
            let options = m["options"].as_array()?;
            let option = options
                .iter()
                .rev()
                .filter_map(|o| o.as_str())
                .find(|o| propagation_flags(o).is_some())?;
            Some(format!("{option}={destination}"))
        })
        .collect();
    if settings.is_empty() {
        return false;
    }
    let mut args = vec![
        shim.display().to_string(),
        PROPAGATION_HOOK_ARG.to_owned(),
        rootfs.display().to_string(),
    ];
    args.extend(settings);
    let hook = serde_json::json!({"path": shim, "args": args});
    if !spec["hooks"].is_object() {
        spec["hooks"] = serde_json::json!({});
    }
    let hooks = &mut spec["hooks"]["createContainer"];
    match hooks.as_array_mut() {
        Some(list) => list.insert(0, hook),
        None => *hooks = serde_json::json!([hook]),
    }
    true
}

/// The cgroup v1 controllers `libcgroups`' v1 manager places a container in (its own list is
/// not public); in other hierarchies the container stays in the cgroup it inherits.
const MANAGED_CONTROLLERS: [&str; 12] = [
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "hugetlb",
    "memory",
    "pids",
    "perf_event",
    "blkio",
    "net_prio",
    "net_cls",
    "freezer",
];

/// The cgroup v1 hierarchies mounted under `/sys/fs/cgroup` (from `mountinfo`), each with the
/// container's cgroup: `cgroups_path` where libcgroups places it, else the one this process is
/// in (from `own`, its `/proc/self/cgroup`), which the container inherits.
fn v1_hierarchies(mountinfo: &str, own: &str, cgroups_path: &str) -> Vec<Hierarchy> {
    let own: Vec<(Vec<&str>, &str)> = crate::proc_text::cgroup_entries(own)
        .into_iter()
        .map(|(controllers, path)| (controllers.split(',').collect(), path))
        .collect();
    crate::proc_text::mounts(mountinfo)
        .into_iter()
        .filter_map(|(fstype, mount_point, options)| {
            if fstype != "cgroup" || !mount_point.starts_with("/sys/fs/cgroup/") {
                return None;
            }
            let options: Vec<&str> = options.split(',').collect();
            let cgroup = if options.iter().any(|o| MANAGED_CONTROLLERS.contains(o)) {
                cgroups_path
            } else {
                own.iter()
                    .find(|(controllers, _)| controllers.iter().all(|c| options.contains(c)))
                    .map(|(_, path)| *path)?
            };
            Some(Hierarchy {
                mount_point: PathBuf::from(mount_point),
                cgroup: PathBuf::from(cgroup.trim_start_matches('/')),
            })
        })
        .collect()
}

/// Replaces the cgroup mount of a container that joins a PID namespace (see the module
/// comment); whether it did.
fn emulate_cgroup_mount(
    spec: &mut serde_json::Value,
    hierarchies: impl FnOnce(&str) -> anyhow::Result<Vec<Hierarchy>>,
) -> anyhow::Result<bool> {
    let joins_pid_namespace = spec
        .pointer("/linux/namespaces")
        .and_then(|n| n.as_array())
        .is_some_and(|namespaces| {
            namespaces
                .iter()
                .any(|ns| ns["type"] == "pid" && ns["path"].as_str().is_some_and(|p| !p.is_empty()))
        });
    let Some(cgroups_path) = spec
        .pointer("/linux/cgroupsPath")
        .and_then(|p| p.as_str())
        .map(str::to_owned)
    else {
        return Ok(false);
    };
    let Some(mounts) = spec.get_mut("mounts").and_then(|m| m.as_array_mut()) else {
        return Ok(false);
    };
    let Some(at) = mounts.iter().position(|m| m["type"] == "cgroup") else {
        return Ok(false);
    };
    if !joins_pid_namespace {
        return Ok(false);
    }
    let hierarchies = hierarchies(&cgroups_path)?;
    if hierarchies.is_empty() {
        return Ok(false);
    }
    let cgroup_mount = mounts[at].clone();
    let destination = cgroup_mount["destination"]
        .as_str()
        .unwrap_or("/sys/fs/cgroup");
    let read_only = cgroup_mount["options"]
        .as_array()
        .is_some_and(|options| options.iter().any(|o| o == "ro"));
    let mut bind_options = vec!["rbind", "nosuid", "noexec", "nodev"];
    if read_only {
        bind_options.push("ro");
    }
    let tmpfs = serde_json::json!({
        "destination": destination,
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "noexec", "nodev", "mode=755"],
    });
    let binds = hierarchies.iter().filter_map(|hierarchy| {
        let name = hierarchy.mount_point.file_name()?.to_str()?;
        Some(serde_json::json!({
            "destination": format!("{}/{name}", destination.trim_end_matches('/')),
            "type": "bind",
            "source": hierarchy.mount_point.join(&hierarchy.cgroup),
            "options": bind_options,
        }))
    });
    let replacement: Vec<serde_json::Value> = std::iter::once(tmpfs).chain(binds).collect();
    mounts.splice(at..=at, replacement);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewritten(spec: serde_json::Value) -> serde_json::Value {
        let bundle = tempfile::tempdir().unwrap();
        let path = bundle.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
        let rootfs = bundle.path().join("rootfs");
        rewrite_for_libcontainer(bundle.path(), spec, &rootfs, false, false).unwrap();
        let names: Vec<_> = std::fs::read_dir(bundle.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"], "no temporary file is left");
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    #[test]
    fn recursive_forms_become_the_short_ones_and_nothing_else_changes() {
        for (given, expected) in [
            ("rshared", "shared"),
            ("rslave", "slave"),
            ("rprivate", "private"),
            ("runbindable", "unbindable"),
            ("shared", "shared"),
            ("slave", "slave"),
            ("bogus", "bogus"),
        ] {
            let spec = json!({
                "ociVersion": "1.0.2",
                "process": {"args": ["/app"], "x-unknown": [1, 2]},
                "linux": {"rootfsPropagation": given, "cgroupsPath": "/a/b"},
            });
            let mut expected_spec = spec.clone();
            expected_spec["linux"]["rootfsPropagation"] = json!(expected);
            assert_eq!(rewritten(spec), expected_spec, "{given}");
        }
    }

    #[test]
    fn no_new_privileges_false_is_absent_and_true_stays() {
        for (given, expected) in [
            (json!(false), None),
            (json!(true), Some(json!(true))),
            (json!("false"), Some(json!("false"))),
        ] {
            let spec = json!({"process": {"args": ["/app"], "noNewPrivileges": given}});
            let mut expected_spec = json!({"process": {"args": ["/app"]}});
            if let Some(value) = expected {
                expected_spec["process"]["noNewPrivileges"] = value;
            }
            assert_eq!(rewritten(spec), expected_spec, "{given}");
        }
    }

    const MOUNTINFO: &str = "\
25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/rdma rw - cgroup cgroup rw,rdma
40 1 0:40 / /elsewhere/memory rw - cgroup cgroup rw,memory
";
    const OWN: &str = "4:name=systemd:/system.slice/containerd.service\n3:memory:/shim\n\
                       2:cpu,cpuacct:/shim\n1:rdma:/\n0::/shim\n";

    fn hierarchy(mount_point: &str, cgroup: &str) -> Hierarchy {
        Hierarchy {
            mount_point: PathBuf::from(mount_point),
            cgroup: PathBuf::from(cgroup),
        }
    }

    #[test]
    fn hierarchies_place_the_container_where_libcgroups_does() {
        assert_eq!(
            v1_hierarchies(MOUNTINFO, OWN, "/kubepods/pod1/abc"),
            [
                hierarchy("/sys/fs/cgroup/systemd", "system.slice/containerd.service"),
                hierarchy("/sys/fs/cgroup/memory", "kubepods/pod1/abc"),
                hierarchy("/sys/fs/cgroup/cpu,cpuacct", "kubepods/pod1/abc"),
                hierarchy("/sys/fs/cgroup/rdma", ""),
            ]
        );
        assert_eq!(v1_hierarchies("", OWN, "/a"), []);
    }

    fn pod_member(pid_path: &str, cgroup_options: &[&str]) -> serde_json::Value {
        json!({
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                 "options": cgroup_options},
                {"destination": "/etc/hosts", "type": "bind", "source": "/h", "options": ["rbind"]},
            ],
            "linux": {
                "cgroupsPath": "test.slice:cri-containerd:abc",
                "namespaces": [{"type": "pid", "path": pid_path}, {"type": "mount"}],
            },
        })
    }

    #[test]
    fn the_cgroup_mount_of_a_pod_pid_namespace_member_is_emulated() {
        let node = |path: &str| {
            assert_eq!(path, "test.slice:cri-containerd:abc");
            Ok(vec![
                hierarchy("/sys/fs/cgroup/memory", "test.slice:cri-containerd:abc"),
                hierarchy("/sys/fs/cgroup/systemd", "shim"),
            ])
        };
        let mut spec = pod_member("/proc/42/ns/pid", &["nosuid", "ro"]);
        assert!(rewrite(&mut spec, node, Path::new("/shim"), Path::new("/b/rootfs")).unwrap());
        let bind = |source: &str, destination: &str| {
            json!({"destination": destination, "type": "bind", "source": source,
                   "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        };
        assert_eq!(
            spec["mounts"],
            json!([
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/sys/fs/cgroup", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "noexec", "nodev", "mode=755"]},
                bind(
                    "/sys/fs/cgroup/memory/test.slice:cri-containerd:abc",
                    "/sys/fs/cgroup/memory"
                ),
                bind("/sys/fs/cgroup/systemd/shim", "/sys/fs/cgroup/systemd"),
                {"destination": "/etc/hosts", "type": "bind", "source": "/h", "options": ["rbind"]},
            ])
        );
    }

    #[test]
    fn other_cgroup_mounts_are_left_alone() {
        let unasked = |_: &str| -> anyhow::Result<Vec<Hierarchy>> {
            panic!("the node's hierarchies are asked for only when needed")
        };
        // Its own PID namespace (no path): libcontainer finds its cgroups.
        let mut spec = pod_member("", &["ro"]);
        let before = spec.clone();
        assert!(!rewrite(&mut spec, unasked, Path::new("/shim"), Path::new("/r")).unwrap());
        assert_eq!(spec, before);
        // cgroup v2, or systemd's driver: no hierarchies.
        let mut spec = pod_member("/proc/42/ns/pid", &["ro"]);
        let before = spec.clone();
        let none = |_: &str| Ok(Vec::new());
        assert!(!rewrite(&mut spec, none, Path::new("/shim"), Path::new("/r")).unwrap());
        assert_eq!(spec, before);
    }

    #[test]
    fn a_hook_applies_each_mounts_own_propagation_first() {
        let user_hook = json!({"path": "/usr/bin/user-hook"});
        let mut spec = json!({
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/d",
                 "options": ["rbind", "rprivate"]},
                {"destination": "/logs", "type": "bind", "source": "/l",
                 "options": ["rslave", "rbind", "ro"]},
            ],
            "hooks": {"createContainer": [user_hook.clone()], "poststop": []},
        });
        let unasked = |_: &str| -> anyhow::Result<Vec<Hierarchy>> { unreachable!() };
        assert!(
            rewrite(
                &mut spec,
                unasked,
                Path::new("/bin/shim"),
                Path::new("/b/rootfs")
            )
            .unwrap()
        );
        let hook = json!({"path": "/bin/shim", "args": [
            "/bin/shim", PROPAGATION_HOOK_ARG, "/b/rootfs", "rprivate=/data", "rslave=/logs"
        ]});
        assert_eq!(
            spec["hooks"],
            json!({"createContainer": [hook, user_hook], "poststop": []})
        );

        let mut spec = json!({"mounts": [{"destination": "/v", "options": ["bind", "shared"]}]});
        assert!(rewrite(&mut spec, unasked, Path::new("/s"), Path::new("/r")).unwrap());
        assert_eq!(spec["hooks"]["createContainer"][0]["args"][3], "shared=/v");
    }

    #[test]
    fn specs_without_the_fields_are_left_alone() {
        for spec in [
            json!({"ociVersion": "1.0.2"}),
            json!({"linux": {}}),
            json!({"linux": {"rootfsPropagation": 3}}),
        ] {
            assert_eq!(rewritten(spec.clone()), spec);
        }
        // Nothing to change: the file is not written again (its own layout stays).
        let bundle = tempfile::tempdir().unwrap();
        let text = b"{ \"ociVersion\":  \"1.0.2\" }";
        std::fs::write(bundle.path().join("config.json"), text).unwrap();
        let spec = serde_json::from_slice(text).unwrap();
        let rootfs = bundle.path().join("rootfs");
        rewrite_for_libcontainer(bundle.path(), spec, &rootfs, false, false).unwrap();
        assert_eq!(
            std::fs::read(bundle.path().join("config.json")).unwrap(),
            text
        );
    }
}
