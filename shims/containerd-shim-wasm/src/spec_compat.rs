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
//!
//! The helper rewrites these in the bundle's `config.json` before `libcontainer` reads it (for
//! the init process, and again for each exec process); nothing else in the file changes.

use std::path::Path;

use anyhow::Context;

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

/// Rewrites what the module comment lists in `<bundle>/config.json`, if anything. The file is
/// replaced by a rename, so a reader sees the old or the new file, never a part.
pub fn rewrite_for_libcontainer(bundle: &Path) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let Ok(mut spec) = serde_json::from_slice::<serde_json::Value>(&text) else {
        // Not JSON: loading the spec reports it with its reason.
        return Ok(());
    };
    if !rewrite(&mut spec) {
        return Ok(());
    }
    let temporary = bundle.join("config.json.libcontainer");
    let written = serde_json::to_vec(&spec).context("serialise the spec")?;
    std::fs::write(&temporary, written)
        .with_context(|| format!("write {}", temporary.display()))?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("replace {} with its rewritten spec", path.display()))
}

/// Rewrites `spec` in place; whether anything changed.
fn rewrite(spec: &mut serde_json::Value) -> bool {
    let mut changed = false;
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
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewritten(spec: serde_json::Value) -> serde_json::Value {
        let bundle = tempfile::tempdir().unwrap();
        let path = bundle.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
        rewrite_for_libcontainer(bundle.path()).unwrap();
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

    #[test]
    fn specs_without_the_fields_are_left_alone() {
        for spec in [
            json!({"ociVersion": "1.0.2"}),
            json!({"linux": {}}),
            json!({"linux": {"rootfsPropagation": 3}}),
        ] {
            assert_eq!(rewritten(spec.clone()), spec);
        }
        let bundle = tempfile::tempdir().unwrap();
        std::fs::write(bundle.path().join("config.json"), b"{not json").unwrap();
        rewrite_for_libcontainer(bundle.path()).unwrap();
        assert_eq!(
            std::fs::read(bundle.path().join("config.json")).unwrap(),
            b"{not json"
        );
    }
}
