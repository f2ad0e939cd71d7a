//! Checks the written tar the way an importer reads it: index -> manifest -> config and layers,
//! every reference resolving to a blob whose digest and size match.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::*;

/// The regular files of a tar, by path.
fn untar(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(bytes);
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type() == tar::EntryType::Regular {
            let mut content = Vec::new();
            entry.read_to_end(&mut content).unwrap();
            files.insert(entry.path().unwrap().to_str().unwrap().to_owned(), content);
        }
    }
    files
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Resolves a descriptor to its blob, checking the blob's digest and size against it.
fn resolve<'a>(files: &'a BTreeMap<String, Vec<u8>>, descriptor: &Value) -> &'a [u8] {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let blob = files
        .get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("no blob for {digest}"));
    assert_eq!(
        format!("{:x}", Sha256::digest(blob)),
        hex,
        "digest of {digest}"
    );
    assert_eq!(
        descriptor["size"].as_u64().unwrap(),
        blob.len() as u64,
        "size of {digest}"
    );
    blob
}

fn demo_image() -> ImageBuilder {
    ImageBuilder::new("docker.io/library/wasi-demo-app:latest")
        .platform("wasi", "wasm32")
        .file("/wasi-demo-app.wasm", b"\0asm\x01\0\0\0".to_vec(), 0o755)
        .file("/data/hello.txt", "hello from a file\n", 0o644)
        .entrypoint(["/wasi-demo-app.wasm"])
        .env(["A=1", "B=2"])
}

/// Returns (index.json, manifest, config, layer blobs) after checking every link between them.
fn walk(files: &BTreeMap<String, Vec<u8>>) -> (Value, Value, Value, Vec<Vec<u8>>) {
    assert_eq!(
        json(&files["oci-layout"]),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = json(&files["index.json"]);
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    let mut descriptor = manifests[0].clone();
    if descriptor["mediaType"] == "application/vnd.oci.image.index.v1+json" {
        let nested = json(resolve(files, &descriptor));
        assert_eq!(nested["manifests"].as_array().unwrap().len(), 1);
        descriptor = nested["manifests"][0].clone();
    }
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let manifest = json(resolve(files, &descriptor));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = json(resolve(files, &manifest["config"]));
    assert_eq!(descriptor["platform"]["os"], config["os"]);
    assert_eq!(
        descriptor["platform"]["architecture"],
        config["architecture"]
    );
    let layers: Vec<Vec<u8>> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| resolve(files, layer).to_vec())
        .collect();
    // Only file-system layers are unpacked, so only they are in the config's rootfs.
    let layer_digests: Vec<&Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|layer| layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar")
        .map(|layer| &layer["digest"])
        .collect();
    let diff_ids: Vec<&Value> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        diff_ids, layer_digests,
        "uncompressed layers: diff IDs are the digests"
    );
    assert_eq!(config["rootfs"]["type"], "layers");
    (index, manifest, config, layers)
}

#[test]
fn layout_links_resolve_and_carry_platform_and_names() {
    let image = demo_image().build().unwrap();
    let files = untar(&image.to_tar().unwrap());
    let (index, manifest, config, layers) = walk(&files);

    let top = &index["manifests"][0];
    assert_eq!(top["digest"], image.manifest_digest());
    assert_eq!(
        top["platform"],
        serde_json::json!({"os": "wasi", "architecture": "wasm32"})
    );
    assert_eq!(
        top["annotations"],
        serde_json::json!({
            "io.containerd.image.name": "docker.io/library/wasi-demo-app:latest",
            "org.opencontainers.image.ref.name": "latest",
        })
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/wasi-demo-app.wasm"])
    );
    assert_eq!(config["config"]["Env"], serde_json::json!(["A=1", "B=2"]));

    assert_eq!(layers.len(), 1);
    let layer = untar(&layers[0]);
    assert_eq!(layer["data/hello.txt"], b"hello from a file\n");
    assert_eq!(layer["wasi-demo-app.wasm"], b"\0asm\x01\0\0\0");
}

#[test]
fn nested_image_index_resolves_to_the_same_manifest() {
    let direct = demo_image().build().unwrap();
    let nested = demo_image()
        .top_level(TopLevel::ImageIndex)
        .build()
        .unwrap();
    assert_eq!(direct.manifest_digest(), nested.manifest_digest());

    let files = untar(&nested.to_tar().unwrap());
    let (index, ..) = walk(&files);
    let top = &index["manifests"][0];
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(
        top["annotations"]["io.containerd.image.name"],
        nested.reference()
    );
}

#[test]
fn docker_manifest_names_the_same_config_and_layers() {
    let files = untar(&demo_image().build().unwrap().to_tar().unwrap());
    let (_, manifest, ..) = walk(&files);
    let docker = json(&files["manifest.json"]);
    let entries = docker.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    let blob_path = |descriptor: &Value| {
        let digest = descriptor["digest"].as_str().unwrap();
        format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap())
    };
    assert_eq!(entry["Config"], blob_path(&manifest["config"]));
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(blob_path)
        .collect();
    assert_eq!(entry["Layers"], serde_json::json!(layers));
    assert_eq!(
        entry["RepoTags"],
        serde_json::json!(["docker.io/library/wasi-demo-app:latest"])
    );
    for path in layers.iter().chain([&blob_path(&manifest["config"])]) {
        assert!(files.contains_key(path), "{path} is missing");
    }

    let without = demo_image().docker_manifest(false).build().unwrap();
    assert!(!untar(&without.to_tar().unwrap()).contains_key("manifest.json"));
}

#[test]
fn same_input_gives_identical_bytes_and_digests() {
    let first = demo_image().build().unwrap();
    let second = demo_image().build().unwrap();
    assert_eq!(first.manifest_digest(), second.manifest_digest());
    assert_eq!(first.to_tar().unwrap(), second.to_tar().unwrap());

    let changed = demo_image()
        .file("/data/hello.txt", "other\n", 0o644)
        .build()
        .unwrap();
    assert_ne!(first.manifest_digest(), changed.manifest_digest());
    let other_mode = demo_image().file("/data/hello.txt", "hello from a file\n", 0o600);
    assert_ne!(
        first.manifest_digest(),
        other_mode.build().unwrap().manifest_digest()
    );
}

#[test]
fn raw_layers_are_stored_as_given_and_an_empty_tree_adds_no_layer() {
    let module = wat_module("(module)").unwrap();
    let image = ImageBuilder::new("artifact")
        .raw_layer("application/wasm", module.clone())
        .build()
        .unwrap();
    assert_eq!(image.reference(), "docker.io/library/artifact:latest");
    let files = untar(&image.to_tar().unwrap());
    let (_, manifest, config, layers) = walk(&files);
    assert_eq!(layers, [module]);
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([]),
        "containerd leaves a raw layer packed and counts only the rootfs' layers"
    );
    assert_eq!(
        (&config["os"], &config["architecture"]),
        (&"wasip1".into(), &"wasm".into())
    );
    assert!(config["config"].get("Entrypoint").is_none());
}

#[test]
fn write_tar_writes_what_to_tar_returns() {
    let path = std::env::temp_dir().join(format!("image-builder-{}.tar", std::process::id()));
    let image = demo_image().write_tar(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), image.to_tar().unwrap());
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn build_reports_bad_names_and_paths() {
    let error = ImageBuilder::new("Bad Name").build().unwrap_err();
    assert!(
        format!("{error:#}").contains("invalid image name \"Bad Name\""),
        "{error:#}"
    );
    let error = demo_image()
        .file("/../etc/passwd", "", 0o644)
        .build()
        .unwrap_err();
    assert!(format!("{error:#}").contains("/../etc/passwd"), "{error:#}");
}

#[test]
fn wat_module_compiles_text_and_reports_errors() {
    let module =
        wat_module(r#"(module (import "env" "missing" (func)) (func (export "_start")))"#).unwrap();
    wasmparser::Validator::new().validate_all(&module).unwrap();
    let imports: Vec<(String, String)> = wasmparser::Parser::new(0)
        .parse_all(&module)
        .filter_map(|payload| match payload.unwrap() {
            wasmparser::Payload::ImportSection(reader) => Some(reader),
            _ => None,
        })
        .flat_map(|reader| reader.into_imports())
        .map(|import| {
            let import = import.unwrap();
            (import.module.to_owned(), import.name.to_owned())
        })
        .collect();
    assert_eq!(imports, [("env".to_owned(), "missing".to_owned())]);
    let error = wat_module("(module (func (export)))").unwrap_err();
    assert!(
        format!("{error:#}").starts_with("cannot compile WebAssembly text"),
        "{error:#}"
    );
}

#[test]
fn print_module_carries_any_text() {
    let text = "quote \" backslash \\ newline\n";
    let module = crate::wasi_print_module(text).unwrap();
    wasmparser::Validator::new().validate_all(&module).unwrap();
    assert!(
        module.windows(text.len()).any(|w| w == text.as_bytes()),
        "the text is in the data segment"
    );
}

#[test]
fn a_titled_raw_layer_names_its_file() {
    let module = wat_module("(module)").unwrap();
    let image = ImageBuilder::new("titled")
        .titled_raw_layer("application/wasm", module, "app.wasm")
        .raw_layer("application/wasm", b"\0asm\x01\0\0\0".to_vec())
        .build()
        .unwrap();
    let files = untar(&image.to_tar().unwrap());
    let (_, manifest, _, _) = walk(&files);
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "app.wasm"
    );
    assert!(manifest["layers"][1].get("annotations").is_none());
}

#[test]
fn a_spin_artifact_is_laid_out_as_spin_registry_push_does() {
    let module = wat_module("(module)").unwrap();
    let page = b"<p>more than the 128 bytes Spin inlines</p>".repeat(4);
    let locked = serde_json::json!({
        "spin_lock_version": 1,
        "metadata": { "name": "site" },
        "triggers": [{ "id": "t", "trigger_type": "http",
                       "trigger_config": { "component": "web", "route": "/..." } }],
        "components": [{ "id": "web" }]
    });
    let web = SpinComponent {
        module: module.clone(),
        files: [
            ("hi.txt".to_string(), b"hi\n".to_vec()),
            ("static/index.html".to_string(), page.clone()),
        ]
        .into(),
    };
    let image = spin_artifact(
        ImageBuilder::new("site").platform("wasi", "wasm"),
        locked.clone(),
        &[("web".to_string(), web.clone())].into(),
        LockedAppPlace::Layer,
    )
    .unwrap()
    .build()
    .unwrap();
    let files = untar(&image.to_tar().unwrap());
    let (_, manifest, config, layers) = walk(&files);
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    // The small file is only inlined; the page has its data layer.
    assert_eq!(types, [WASM_LAYER_TYPE, DATA_LAYER_TYPE, LOCKED_APP_TYPE]);
    assert_eq!(layers[0], module);
    assert_eq!(layers[1], page);
    let locked_app = json(&layers[2]);
    assert_eq!(
        config["config"]["Labels"][LOCKED_APP_DIGEST_LABEL],
        manifest["layers"][2]["digest"]
    );
    let sha = |bytes: &[u8]| format!("sha256:{:x}", Sha256::digest(bytes));
    let component = &locked_app["components"][0];
    assert_eq!(
        component["source"],
        serde_json::json!({ "content_type": "application/wasm", "digest": sha(&module) })
    );
    assert_eq!(
        component["files"],
        serde_json::json!([
            { "digest": sha(b"hi\n"), "inline": "aGkK", "path": "hi.txt" },
            { "digest": sha(&page), "path": "static/index.html" },
        ])
    );
    assert_eq!(locked_app["triggers"], locked["triggers"]);

    let missing = spin_artifact(
        ImageBuilder::new("site"),
        locked.clone(),
        &BTreeMap::new(),
        LockedAppPlace::Layer,
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("component \"web\""), "{missing}");

    // Older Spin: the locked app is the config, no label, no layer of its own.
    let older = spin_artifact(
        ImageBuilder::new("site"),
        locked,
        &[("web".to_string(), web)].into(),
        LockedAppPlace::Config,
    )
    .unwrap()
    .build()
    .unwrap();
    let files = untar(&older.to_tar().unwrap());
    let index = json(&files["index.json"]);
    let manifest = json(resolve(&files, &index["manifests"][0]));
    assert_eq!(manifest["config"]["mediaType"], LOCKED_APP_TYPE);
    let locked_app = json(resolve(&files, &manifest["config"]));
    assert_eq!(
        locked_app["components"][0]["source"]["digest"],
        sha(&module)
    );
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 2);
}
