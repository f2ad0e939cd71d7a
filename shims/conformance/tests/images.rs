//! Wasm images as Docker users have them: the three platform names in use (`wasi/wasm`,
//! `wasi/wasm32`, `wasip1/wasm`), a single manifest or an image index, and an entrypoint
//! given as an absolute path, a relative one or a bare name. Each runs from its image config
//! alone (`ctr run` with no args), as `docker run IMAGE` would.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use image_builder::{ImageBuilder, TopLevel, wasi_print_module};
use shim_conformance::container::unique_id;
use shim_conformance::ctr::Ctr;
use shim_conformance::engines::Runtime;
use shim_conformance::target::{check_targets, wasm_targets};

const GREETING: &str = "hello from an image\n";

/// One image shape to try.
struct Shape {
    label: &'static str,
    os: &'static str,
    arch: &'static str,
    top_level: TopLevel,
    entrypoint: &'static str,
}

const SHAPES: &[Shape] = &[
    Shape {
        label: "wasi-wasm",
        os: "wasi",
        arch: "wasm",
        top_level: TopLevel::Manifest,
        entrypoint: "/hello.wasm",
    },
    Shape {
        label: "wasi-wasm-index",
        os: "wasi",
        arch: "wasm",
        top_level: TopLevel::ImageIndex,
        entrypoint: "/hello.wasm",
    },
    Shape {
        label: "wasi-wasm32",
        os: "wasi",
        arch: "wasm32",
        top_level: TopLevel::Manifest,
        entrypoint: "/hello.wasm",
    },
    Shape {
        label: "wasi-wasm32-index",
        os: "wasi",
        arch: "wasm32",
        top_level: TopLevel::ImageIndex,
        entrypoint: "/hello.wasm",
    },
    Shape {
        label: "wasip1-wasm",
        os: "wasip1",
        arch: "wasm",
        top_level: TopLevel::Manifest,
        entrypoint: "/hello.wasm",
    },
    Shape {
        label: "wasip1-wasm-index",
        os: "wasip1",
        arch: "wasm",
        top_level: TopLevel::ImageIndex,
        entrypoint: "/hello.wasm",
    },
    Shape {
        label: "relative-entrypoint",
        os: "wasip1",
        arch: "wasm",
        top_level: TopLevel::Manifest,
        entrypoint: "./hello.wasm",
    },
    Shape {
        label: "bare-entrypoint",
        os: "wasi",
        arch: "wasm",
        top_level: TopLevel::Manifest,
        entrypoint: "hello.wasm",
    },
];

#[test]
#[ignore = "needs the private containerd: run `make test`"]
fn every_platform_name_and_layout_runs() {
    let module = wasi_print_module(GREETING).expect("the hello module compiles");
    check_targets(&wasm_targets(), |target, _test| {
        let mut failures = Vec::new();
        for shape in SHAPES {
            if let Err(e) = run_shape(shape, &module, target.runtime) {
                failures.push(format!("{}: {e:#}", shape.label));
            }
        }
        ensure!(failures.is_empty(), "{}", failures.join("\n"));
        Ok(())
    });
}

fn run_shape(shape: &Shape, module: &[u8], runtime: &'static Runtime) -> Result<()> {
    let reference = format!("docker.io/library/image-shape-{}:latest", shape.label);
    let platform = format!("{}/{}", shape.os, shape.arch);
    let tar = ImageBuilder::new(reference.as_str())
        .platform(shape.os, shape.arch)
        .file("/hello.wasm", module.to_vec(), 0o755)
        .entrypoint([shape.entrypoint])
        .working_dir("/")
        .top_level(shape.top_level)
        .build()
        .and_then(|image| image.to_tar())
        .context("build the image")?;
    Ctr::new(["images", "import", "--platform", &platform, "-"])
        .stdin(tar)
        .timeout(Duration::from_secs(60))
        .output()?
        .success()?;
    let id = unique_id(shape.label, runtime);
    let out = Ctr::new([
        "run",
        "--rm",
        "--runtime",
        runtime.runtime_type,
        "--platform",
        &platform,
        &reference,
        &id,
    ])
    .output();
    // Whatever happened, leave no container behind.
    let _ = Ctr::new(["task", "delete", "--force", &id]).output();
    let _ = Ctr::new(["container", "delete", &id]).output();
    out?.expect(0, GREETING)
}
