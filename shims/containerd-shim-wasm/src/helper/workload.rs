//! Finds what a container runs: `process.args[0]` resolved inside the container's rootfs, and
//! whether it is a Wasm module or a native executable (ELF binary or `#!` script).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::engine::WASM_MAGIC;
use crate::entrypoint::Entrypoint;
pub use crate::request::Kind;

/// The `PATH` runc uses when the spec sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The resolved workload of a container.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: Kind,
    pub entrypoint: Entrypoint,
    /// Where the file is, seen from the shim (inside the mounted rootfs).
    pub host_path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(
        "process.args is empty: the container names nothing to run (set an entrypoint or a command)"
    )]
    NoArgs,
    // "no such file or directory", as runc says it: Docker answers 127 for that wording.
    #[error("{path}: no such file or directory in the container's rootfs{searched}")]
    NotFound { path: String, searched: String },
    #[error("{path}: cannot read it: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: neither a WebAssembly module nor an executable (ELF binary or #! script)")]
    NotRunnable { path: String },
    #[error("{0}")]
    ArgsTooLarge(String),
    #[error("{path}: {what} but not executable (mode {mode:o})")]
    NotExecutable {
        path: String,
        what: &'static str,
        mode: u32,
    },
}

/// Resolves and classifies the workload of `spec`, whose rootfs is mounted at `rootfs`.
pub fn resolve(spec: &Spec, rootfs: &Path) -> Result<Workload, WorkloadError> {
    let process = spec.process().as_ref();
    let args = process.and_then(|p| p.args().as_ref());
    let arg0 = args
        .and_then(|a| a.first())
        .filter(|a| !a.is_empty())
        .ok_or(WorkloadError::NoArgs)?;
    let env = process.and_then(|p| p.env().as_deref()).unwrap_or_default();
    check_exec_size(args.map(Vec::as_slice).unwrap_or_default(), env)?;
    let cwd = process
        .map(|p| p.cwd().clone())
        .unwrap_or_else(|| "/".into());
    let path_var = process
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().find_map(|kv| kv.strip_prefix("PATH=")))
        .unwrap_or(DEFAULT_PATH);

    // A path may itself contain '#': the whole argument wins when such a file exists.
    let whole = Entrypoint {
        path: arg0.clone(),
        func: crate::entrypoint::DEFAULT_ENTRY.to_string(),
    };
    let entrypoint = match find(rootfs, &cwd, path_var, arg0) {
        Ok(_) => whole,
        Err(_) => Entrypoint::parse(arg0),
    };
    let (host_path, kind) = match find(rootfs, &cwd, path_var, &entrypoint.path) {
        Ok(host_path) => {
            let kind = classify(&host_path, &entrypoint.path)?;
            (host_path, kind)
        }
        Err(not_found) => module_in_cwd(rootfs, &cwd, &entrypoint.path).ok_or(not_found)?,
    };
    Ok(Workload {
        kind,
        entrypoint,
        host_path,
    })
}

/// The workload of an engine that runs applications (`Engine::APPLICATION_FILE`): a native
/// executable when args[0] names one (a sidecar sharing the pod's shim), else the first of the
/// application `files` (absolute paths in the container) the rootfs has, whatever args[0] says.
pub fn resolve_application(
    spec: &Spec,
    rootfs: &Path,
    files: &[&str],
) -> Result<Workload, WorkloadError> {
    match resolve(spec, rootfs) {
        Ok(native) if native.kind == Kind::Native => return Ok(native),
        // Arguments and environment Linux would not pass are refused for an application too.
        Err(too_large @ WorkloadError::ArgsTooLarge(_)) => return Err(too_large),
        // Anything else args[0] is (a module, a directory such as SpinKube's `/`, nothing at
        // all) leaves the application to run.
        _ => {}
    }
    let found = files
        .iter()
        .find_map(|file| Some((*file, find(rootfs, Path::new("/"), "", file).ok()?)));
    let Some((file, host_path)) = found else {
        let (first, others) = files.split_first().unwrap_or((&"", &[]));
        let nor = others
            .iter()
            .map(|f| format!(" nor {f}"))
            .collect::<String>();
        return Err(WorkloadError::NotFound {
            path: format!("{first}{nor}"),
            searched: " (the application this shim runs; args[0] is no native executable either)"
                .to_string(),
        });
    };
    Ok(Workload {
        kind: Kind::Wasm,
        entrypoint: Entrypoint {
            path: file.to_string(),
            func: crate::entrypoint::DEFAULT_ENTRY.to_string(),
        },
        host_path,
    })
}

/// The longest single argument or environment string Linux passes to a program
/// (`MAX_ARG_STRLEN`, 32 pages).
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Refuses, at create, arguments and environment that Linux would not pass to a program
/// (`execve` fails with E2BIG, which runc reports only at start). A module gets the same
/// bounds: a spec is no way to hand a module gigabytes of strings.
fn check_exec_size(args: &[String], env: &[String]) -> Result<(), WorkloadError> {
    let named = args
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("process.args[{i}]"), a))
        .chain(
            env.iter()
                .enumerate()
                .map(|(i, e)| (format!("process.env[{i}]"), e)),
        );
    for (name, value) in named {
        if value.len() >= MAX_ARG_STRLEN {
            return Err(WorkloadError::ArgsTooLarge(format!(
                "{name} is {} bytes, more than the {MAX_ARG_STRLEN} Linux passes in one argument",
                value.len()
            )));
        }
    }
    // What execve counts: every string with its NUL, and a pointer to each.
    let total: usize = args
        .iter()
        .chain(env)
        .map(|s| s.len() + 1 + std::mem::size_of::<usize>())
        .sum();
    let limit = nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX)
        .ok()
        .flatten()
        .map_or(2 << 20, |max| max as usize);
    if total > limit {
        return Err(WorkloadError::ArgsTooLarge(format!(
            "process.args and process.env take {total} bytes, more than the {limit} (ARG_MAX) Linux passes to a program"
        )));
    }
    Ok(())
}

/// Wasm images often name their module bare (`ENTRYPOINT ["app.wasm"]`) without putting it
/// on PATH, and the reference shim runs such a module from the working directory; so do we.
/// A program that is not Wasm keeps execvp's rule (PATH only), as under runc.
fn module_in_cwd(rootfs: &Path, cwd: &Path, name: &str) -> Option<(PathBuf, Kind)> {
    if name.contains('/') {
        return None;
    }
    let host_path = find(rootfs, cwd, "", &format!("./{name}")).ok()?;
    match classify(&host_path, name) {
        Ok(Kind::Wasm) => Some((host_path, Kind::Wasm)),
        _ => None,
    }
}

/// Looks `name` up like execvp does, but inside `rootfs`: names with a '/' are paths (relative
/// ones against `cwd`), bare names are searched in `path_var`. Symlinks never leave `rootfs`.
fn find(rootfs: &Path, cwd: &Path, path_var: &str, name: &str) -> Result<PathBuf, WorkloadError> {
    let candidates: Vec<PathBuf> = if name.contains('/') {
        vec![cwd.join(name)]
    } else {
        path_var
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join(name))
            .collect()
    };
    for guest in &candidates {
        if let Ok(host) = safe_path::scoped_join(rootfs, guest)
            && host.is_file()
        {
            return Ok(host);
        }
    }
    let searched = if name.contains('/') {
        format!(" (looked at {})", candidates[0].display())
    } else {
        format!(" (searched PATH={path_var})")
    };
    Err(WorkloadError::NotFound {
        path: name.to_string(),
        searched,
    })
}

fn classify(host_path: &Path, shown: &str) -> Result<Kind, WorkloadError> {
    let unreadable = |source| WorkloadError::Unreadable {
        path: shown.to_string(),
        source,
    };
    let mut file = File::open(host_path).map_err(unreadable)?;
    let mut head = [0u8; 4];
    let len = read_up_to(&mut file, &mut head).map_err(unreadable)?;
    let head = &head[..len];
    if head.starts_with(WASM_MAGIC) {
        return Ok(Kind::Wasm);
    }
    let what = if head.starts_with(b"\x7fELF") {
        "an ELF binary"
    } else if head.starts_with(b"#!") {
        "a #! script"
    } else {
        return Err(WorkloadError::NotRunnable {
            path: shown.to_string(),
        });
    };
    let mode = file.metadata().map_err(unreadable)?.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(WorkloadError::NotExecutable {
            path: shown.to_string(),
            what,
            mode: mode & 0o7777,
        });
    }
    Ok(Kind::Native)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support;
    use std::os::unix::fs::symlink;

    fn spec(args: &[&str], env: &[&str], cwd: &str) -> Spec {
        test_support::spec(args, env, cwd, false)
    }

    fn write(root: &Path, path: &str, bytes: &[u8], mode: u32) {
        let full = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, bytes).unwrap();
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "/app.wasm", b"\0asm\x01\0\0\0", 0o644);
        write(dir.path(), "/bin/tool", b"\x7fELF\x02\x01", 0o755);
        write(dir.path(), "/bin/script", b"#!/bin/sh\necho hi\n", 0o755);
        write(dir.path(), "/bin/plain", b"\x7fELF\x02\x01", 0o644);
        write(dir.path(), "/etc/notes.txt", b"hello", 0o755);
        write(dir.path(), "/work/rel.wasm", b"\0asm\x01\0\0\0", 0o644);
        dir
    }

    #[test]
    fn classifies_wasm_elf_and_scripts() {
        let root = rootfs();
        let w = resolve(&spec(&["/app.wasm"], &[], "/"), root.path()).unwrap();
        assert_eq!(w.kind, Kind::Wasm);
        assert_eq!(w.entrypoint.func, "_start");
        let w = resolve(&spec(&["tool"], &[], "/"), root.path()).unwrap();
        assert_eq!(w.kind, Kind::Native);
        assert_eq!(w.host_path, root.path().join("bin/tool"));
        let w = resolve(&spec(&["/bin/script"], &[], "/"), root.path()).unwrap();
        assert_eq!(w.kind, Kind::Native);
    }

    #[test]
    fn a_bare_module_name_is_found_in_the_working_directory_but_not_a_program() {
        let root = rootfs();
        let w = resolve(&spec(&["app.wasm"], &[], "/"), root.path()).unwrap();
        assert_eq!(
            (w.kind, w.host_path),
            (Kind::Wasm, root.path().join("app.wasm"))
        );
        let w = resolve(&spec(&["rel.wasm#main"], &[], "/work"), root.path()).unwrap();
        assert_eq!(w.host_path, root.path().join("work/rel.wasm"));
        assert_eq!(w.entrypoint.func, "main");
        write(root.path(), "/tool2", b"\x7fELF\x02\x01", 0o755);
        let err = resolve(&spec(&["tool2"], &[], "/"), root.path()).unwrap_err();
        assert!(err.to_string().contains("searched PATH="), "{err}");
    }

    #[test]
    fn entry_function_and_relative_paths() {
        let root = rootfs();
        let w = resolve(&spec(&["/app.wasm#greet"], &[], "/"), root.path()).unwrap();
        assert_eq!(
            (w.entrypoint.path.as_str(), w.entrypoint.func.as_str()),
            ("/app.wasm", "greet")
        );
        let w = resolve(&spec(&["./rel.wasm"], &[], "/work"), root.path()).unwrap();
        assert_eq!(w.host_path, root.path().join("work/rel.wasm"));
    }

    #[test]
    fn path_search_uses_the_spec_path() {
        let root = rootfs();
        let err = resolve(&spec(&["tool"], &["PATH=/nowhere"], "/"), root.path()).unwrap_err();
        assert!(err.to_string().contains("searched PATH=/nowhere"), "{err}");
    }

    #[test]
    fn errors_name_the_file_and_the_reason() {
        let root = rootfs();
        let cases = [
            (vec![], "process.args is empty"),
            (
                vec!["/missing.wasm"],
                "/missing.wasm: no such file or directory in the container's rootfs",
            ),
            (
                vec!["/etc/notes.txt"],
                "/etc/notes.txt: neither a WebAssembly module nor an executable",
            ),
            (
                vec!["/bin/plain"],
                "/bin/plain: an ELF binary but not executable (mode 644)",
            ),
        ];
        for (args, expected) in cases {
            let err = resolve(&spec(&args, &[], "/"), root.path()).unwrap_err();
            assert!(err.to_string().contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn arguments_linux_would_not_pass_are_refused() {
        let root = rootfs();
        let long = "x".repeat(MAX_ARG_STRLEN);
        let err = resolve(&spec(&["/app.wasm", &long], &[], "/"), root.path()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("process.args[1] is 131072 bytes"),
            "{err}"
        );
        let env = format!("BIG={}", "y".repeat(MAX_ARG_STRLEN));
        let err = resolve(&spec(&["/app.wasm"], &[&env], "/"), root.path()).unwrap_err();
        assert!(err.to_string().starts_with("process.env[0] is"), "{err}");
        let many: Vec<String> = (0..40).map(|_| "z".repeat(MAX_ARG_STRLEN - 1)).collect();
        let mut args = vec!["/app.wasm"];
        args.extend(many.iter().map(String::as_str));
        let err = resolve(&spec(&args, &[], "/"), root.path()).unwrap_err();
        assert!(err.to_string().contains("(ARG_MAX)"), "{err}");
        let fine: Vec<&str> = vec!["/app.wasm"; 1000];
        resolve(&spec(&fine, &[], "/"), root.path()).unwrap();
    }

    #[test]
    fn symlinks_stay_inside_the_rootfs() {
        let root = rootfs();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "/evil.wasm", b"\0asm\x01\0\0\0", 0o644);
        symlink(
            outside.path().join("evil.wasm"),
            root.path().join("link.wasm"),
        )
        .unwrap();
        let err = resolve(&spec(&["/link.wasm"], &[], "/"), root.path()).unwrap_err();
        assert!(matches!(err, WorkloadError::NotFound { .. }), "{err}");
        symlink("/app.wasm", root.path().join("inside.wasm")).unwrap();
        let w = resolve(&spec(&["/inside.wasm"], &[], "/"), root.path()).unwrap();
        assert_eq!(w.host_path, root.path().join("app.wasm"));
    }

    #[test]
    fn an_application_engine_runs_its_file_or_a_native_sidecar() {
        let root = rootfs();
        write(
            root.path(),
            "/spin.toml",
            b"spin_manifest_version = 2\n",
            0o644,
        );
        // SpinKube's command is `/`; any args that are no native executable mean the app.
        for args in [vec!["/"], vec!["/app.wasm"], vec![]] {
            let w =
                resolve_application(&spec(&args, &[], "/"), root.path(), &["/spin.toml"]).unwrap();
            assert_eq!(w.kind, Kind::Wasm, "{args:?}");
            assert_eq!(w.entrypoint.path, "/spin.toml");
            assert_eq!(w.host_path, root.path().join("spin.toml"));
        }
        let w =
            resolve_application(&spec(&["tool"], &[], "/"), root.path(), &["/spin.toml"]).unwrap();
        assert_eq!(w.kind, Kind::Native);
        let err = resolve_application(&spec(&["/"], &[], "/"), root.path(), &["/missing.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/missing.toml: no such file"), "{err}");
        let huge = format!("BIG={}", "x".repeat(MAX_ARG_STRLEN));
        let err = resolve_application(&spec(&["/"], &[&huge], "/"), root.path(), &["/spin.toml"])
            .unwrap_err();
        assert!(matches!(err, WorkloadError::ArgsTooLarge(_)), "{err}");
        // The first of the files the rootfs has.
        let both = ["/spin.toml", "/spin.lock.json"];
        let w = resolve_application(&spec(&["/"], &[], "/"), root.path(), &both).unwrap();
        assert_eq!(w.entrypoint.path, "/spin.toml");
        write(root.path(), "/spin.lock.json", b"{}", 0o644);
        let w = resolve_application(&spec(&["/"], &[], "/"), root.path(), &both[1..]).unwrap();
        assert_eq!(w.host_path, root.path().join("spin.lock.json"));
        let err = resolve_application(&spec(&["/"], &[], "/"), root.path(), &["/a", "/b"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("/a nor /b: no such file"), "{err}");
    }
}
