//! Properties of what the shim parses from a container's spec, checked over generated input:
//! the entry point (`path#func`), the preopens annotation, the workload resolution inside a
//! rootfs with symlinks that lead out of it, and specs damaged byte by byte.
//!
//! `make test` runs proptest's default number of cases (256 per property, a few seconds);
//! `make fuzz` runs many more (`PROPTEST_CASES`, see the Makefile). A failure prints the
//! smallest input proptest found.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Component;
use std::sync::OnceLock;

use containerd_shim_wasm::entrypoint::{DEFAULT_ENTRY, Entrypoint};
use containerd_shim_wasm::preopens::{self, PREOPENS_ANNOTATION};
use containerd_shim_wasm::workload;
use oci_spec::runtime::{ProcessBuilder, RootBuilder, Spec, SpecBuilder};
use proptest::prelude::*;

/// A valid spec, as ctr writes one (shortened), for the damaged-spec property.
const SPEC: &str = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},
"args":["/app.wasm#greet","a"],"env":["PATH=/bin","A=1"],"cwd":"/data"},
"root":{"path":"rootfs","readonly":false},"hostname":"h",
"annotations":{"io.containerd.wasm.preopens":"/data,/etc:ro","io.containerd.wasm.network":"allow"},
"linux":{"resources":{"memory":{"limit":1048576}},"namespaces":[{"type":"pid"},{"type":"mount"}]}}"#;

/// A rootfs with a module, a directory, and symlinks that point out of it (absolute,
/// relative, and a loop), next to an "outside" directory that holds what they point at.
struct Fixture {
    _dir: tempfile::TempDir,
    rootfs: std::path::PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        for (path, bytes) in [
            (rootfs.join("app.wasm"), &b"\0asm\x01\0\0\0"[..]),
            (rootfs.join("data/m.wasm"), b"\0asm\x01\0\0\0"),
            (outside.join("evil.wasm"), b"\0asm\x01\0\0\0"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        symlink(outside.join("evil.wasm"), rootfs.join("abs.wasm")).unwrap();
        symlink("../../outside/evil.wasm", rootfs.join("data/rel.wasm")).unwrap();
        symlink(&outside, rootfs.join("data/out")).unwrap();
        symlink("loop", rootfs.join("loop")).unwrap();
        let rootfs = rootfs.canonicalize().unwrap();
        Fixture { _dir: dir, rootfs }
    })
}

fn spec(args: Vec<String>, cwd: &str, annotation: Option<String>) -> Spec {
    let process = ProcessBuilder::default()
        .args(args)
        .cwd(cwd)
        .build()
        .unwrap();
    let root = RootBuilder::default().path("rootfs").build().unwrap();
    let mut spec = SpecBuilder::default()
        .process(process)
        .root(root)
        .build()
        .unwrap();
    if let Some(value) = annotation {
        spec.set_annotations(Some([(PREOPENS_ANNOTATION.to_string(), value)].into()));
    }
    spec
}

/// Path-like strings made of the pieces that matter: separators, `.`, `..`, `#`, the names
/// in the fixture, and odd characters.
fn path_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_string()),
        Just("..".to_string()),
        Just(".".to_string()),
        Just("#".to_string()),
        Just("data".to_string()),
        Just("app.wasm".to_string()),
        Just("abs.wasm".to_string()),
        Just("rel.wasm".to_string()),
        Just("m.wasm".to_string()),
        Just("out".to_string()),
        Just("evil.wasm".to_string()),
        Just("loop".to_string()),
        Just("greet".to_string()),
        "[a-z:,\\x00é ]{0,3}",
    ];
    prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

proptest! {
    // Cases from PROPTEST_CASES (the default config reads it); no regression files: the
    // failing input is printed, and a fixed case belongs in the unit tests.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// `path#func` splits at the last `#` with a non-empty path before it; an empty function
    /// is the default one; anything else is all path.
    #[test]
    fn entry_points_split_at_the_last_hash(arg0 in "\\PC{0,40}") {
        let entry = Entrypoint::parse(&arg0);
        match arg0.rsplit_once('#') {
            Some((path, func)) if !path.is_empty() => {
                prop_assert_eq!(&entry.path, path);
                let expected = if func.is_empty() { DEFAULT_ENTRY } else { func };
                prop_assert_eq!(entry.func.as_str(), expected);
            }
            _ => {
                prop_assert_eq!(&entry.path, &arg0);
                prop_assert_eq!(entry.func.as_str(), DEFAULT_ENTRY);
            }
        }
    }

    /// Whatever the annotation says, an accepted list holds absolute, `..`-free, distinct
    /// directories, and writing it back gives the same list.
    #[test]
    fn preopens_annotation_accepts_only_confined_directories(
        entries in prop::collection::vec((path_like(), prop_oneof![Just(""), Just(":ro"), Just(":rw"), Just(":x")]), 0..5)
    ) {
        let value = entries
            .iter()
            .map(|(path, mode)| format!("{path}{mode}"))
            .collect::<Vec<_>>()
            .join(",");
        if let Ok(dirs) = preopens::parse(&value) {
            for (i, dir) in dirs.iter().enumerate() {
                prop_assert!(dir.path.is_absolute(), "{:?} from {value:?}", dir.path);
                prop_assert!(
                    !dir.path.components().any(|c| c == Component::ParentDir),
                    "{:?} from {value:?}", dir.path
                );
                prop_assert!(!dirs[..i].iter().any(|d| d.path == dir.path), "{value:?}");
            }
            let written = dirs
                .iter()
                .map(|d| format!("{}{}", d.path.display(), if d.read_only { ":ro" } else { "" }))
                .collect::<Vec<_>>()
                .join(",");
            prop_assert_eq!(preopens::parse(&written).unwrap(), dirs);
        }
    }

    /// Resolving any `args[0]` from any working directory never panics, and a file it finds
    /// is inside the rootfs, whatever symlinks lie on the way.
    #[test]
    fn the_workload_is_always_inside_the_rootfs(arg0 in path_like(), cwd in path_like()) {
        let fixture = fixture();
        let cwd = format!("/{cwd}");
        if let Ok(found) = workload::resolve(&spec(vec![arg0.clone()], &cwd, None), &fixture.rootfs) {
            let real = found.host_path.canonicalize().unwrap();
            prop_assert!(
                real.starts_with(&fixture.rootfs),
                "{arg0:?} (cwd {cwd:?}) resolved to {}", real.display()
            );
        }
    }

    /// With the annotation, the module gets exactly the listed directories at their own
    /// paths, plus its working directory as `.` only when that lies inside one of them.
    #[test]
    fn narrowed_preopens_are_the_listed_directories(value in path_like(), cwd in path_like()) {
        let cwd = format!("/{cwd}");
        let spec = spec(vec!["/app.wasm".into()], &cwd, Some(value.clone()));
        if let Ok(dirs) = preopens::parse(&value) {
            let given = preopens::for_spec(&spec).unwrap();
            let (dot, listed): (Vec<_>, Vec<_>) = given.iter().partition(|p| p.guest_path == ".");
            prop_assert_eq!(listed.len(), dirs.len());
            for (preopen, dir) in listed.iter().zip(&dirs) {
                prop_assert_eq!(&preopen.host_path, &dir.path);
                prop_assert_eq!(&preopen.guest_path, &dir.path.display().to_string());
            }
            for preopen in dot {
                prop_assert!(
                    dirs.iter().any(|d| preopen.host_path.starts_with(&d.path)),
                    "cwd {cwd:?} preopened as . outside {value:?}"
                );
            }
        } else {
            prop_assert!(preopens::for_spec(&spec).is_err(), "{value:?}");
        }
    }

    /// A spec damaged byte by byte either fails to parse or goes through everything the
    /// create helper does with it, without a panic.
    #[test]
    fn damaged_specs_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8)) {
        let mut bytes = SPEC.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => { bytes.remove(at); }
            }
        }
        if let Ok(spec) = serde_json::from_slice::<Spec>(&bytes) {
            let fixture = fixture();
            let _ = workload::resolve(&spec, &fixture.rootfs);
            let _ = preopens::for_spec(&spec);
            let _ = preopens::check(&spec, &fixture.rootfs, false);
        }
    }
}
