//! Test images, imported into containerd once per test binary.
//!
//! The demo images come from `scripts/build-test-images.sh`; the bad-input image is built
//! here with the image-builder library, since only the failure tests need it.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use image_builder::{ImageBuilder, wasi_print_module, wat_module};

use crate::ctr::Ctr;

/// An image the tests run, and how to get it into containerd.
#[derive(Debug)]
pub struct TestImage {
    pub reference: &'static str,
    /// `os/arch`, passed to `ctr images import` and `ctr run`.
    pub platform: &'static str,
    source: Source,
    /// The containerd namespace it is imported into; `None`: the suite's (CONTAINERD_NAMESPACE).
    namespace: Option<&'static str>,
    imported: OnceLock<Result<(), String>>,
}

#[derive(Debug)]
enum Source {
    /// A tarball in `<target>/test-images/`, written by scripts/build-test-images.sh.
    Tarball(&'static str),
    /// Built in memory on first use.
    Built(fn() -> Result<ImageBuilder>),
}

/// The Wasm demo (`/wasi-demo-app.wasm`, platform `wasip1/wasm`).
pub static WASI_DEMO_APP: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app:latest",
    "wasip1/wasm",
    "wasi-demo-app.tar",
);

/// The same module under the older platform name `wasi/wasm32`.
pub static WASI_DEMO_APP_WASI: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app-wasi:latest",
    "wasi/wasm32",
    "wasi-demo-app-wasi.tar",
);

/// The Wasm demo as a Wasm OCI artifact: the module is the one layer, not a tar, titled
/// `wasi-demo-app.wasm`, which the config's entry point names (platform wasi/wasm).
pub static WASI_DEMO_APP_ARTIFACT: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app-artifact:latest",
    "wasi/wasm",
    "wasi-demo-app-artifact.tar",
);

/// The native demo (`/native-demo`, a static ELF), same sub-commands as the Wasm demo.
pub static NATIVE_DEMO: TestImage = TestImage::tarball(
    "docker.io/library/native-demo:latest",
    "linux/amd64",
    "native-demo.tar",
);

/// The Wasm demo built for wasm32-wasip2: a `wasi:cli/run` component, same sub-commands.
pub static WASI_DEMO_APP_COMPONENT: TestImage = TestImage::tarball(
    "docker.io/library/wasi-demo-app-component:latest",
    "wasip2/wasm",
    "wasi-demo-app-component.tar",
);

/// `/http-hello.wasm`, a `wasi:http/proxy` component (test-images/http-hello).
pub static HTTP_HELLO: TestImage = TestImage::tarball(
    "docker.io/library/http-hello:latest",
    "wasip2/wasm",
    "http-hello.tar",
);

/// `/http-hello-p3.wasm`, http-hello's WASI 0.3 twin: a `wasi:http/service` component
/// (test-images/http-hello-p3, built with the `wasip3` crate against WASI 0.3.2).
pub static HTTP_HELLO_P3: TestImage = TestImage::tarball(
    "docker.io/library/http-hello-p3:latest",
    "wasip2/wasm",
    "http-hello-p3.tar",
);

/// `/cli-p3.wasm`, a `wasi:cli/run@0.3` command (test-images/cli-p3).
pub static CLI_P3: TestImage = TestImage::tarball(
    "docker.io/library/cli-p3:latest",
    "wasip2/wasm",
    "cli-p3.tar",
);

/// An image `docker.io/library/<file>:latest` from the tarball `<file>.tar` of
/// `target/test-images/`, on `platform`.
macro_rules! tarball_image {
    ($(#[$doc:meta])* $name:ident, $file:literal, $platform:literal) => {
        $(#[$doc])*
        pub static $name: TestImage = TestImage::tarball(
            concat!("docker.io/library/", $file, ":latest"),
            $platform,
            concat!($file, ".tar"),
        );
    };
}

// Spin application images as `spin build` and a Dockerfile would make them: `/spin.toml` and
// its components beside it (scripts/build-test-images.sh), platform `wasi/wasm32`.
tarball_image!(
    /// The seed's handler (test-images/spin-hello, spin-sdk 3, wasm32-wasip1): every request
    /// answers `Hello from Wasm on Kubernetes!`.
    SPIN_HELLO,
    "spin-hello",
    "wasi/wasm32"
);
tarball_image!(
    /// Three components (test-images/spin-routes, spin-sdk 5, wasm32-wasip2): `/users/:id`,
    /// `/static/...` and `/`; the first two answer with the `spin-*` headers they got.
    SPIN_ROUTES,
    "spin-routes",
    "wasi/wasm32"
);
tarball_image!(
    /// A key-value counter (test-images/spin-kv, spin-sdk 5): `GET` answers `count=N\n` after
    /// adding 1 to the key `count` of the store `default`; other methods only read it.
    SPIN_KV,
    "spin-kv",
    "wasi/wasm32"
);
tarball_image!(
    /// A variables echo (test-images/spin-vars, spin-sdk 5): `message=<greeting>, <name>\n`,
    /// `greeting` defaulting to `Hello`, `name` required.
    SPIN_VARS,
    "spin-vars",
    "wasi/wasm32"
);
tarball_image!(
    /// spin-sdk 7 on WASI 0.3 (test-images/spin-kv-p3): a counter like [`SPIN_KV`] through the
    /// async `spin:key-value@3.0.0`, `/keys` through its stream, `/vars` through
    /// `spin:variables@3.0.0`.
    SPIN_KV_P3,
    "spin-kv-p3",
    "wasi/wasm32"
);
tarball_image!(
    /// Outgoing HTTP (`/fetch?to=URL`) and TCP (`/connect?to=IP:PORT`) with
    /// `allowed_outbound_hosts = ["http://127.0.0.1:18291"]`, and its `files`
    /// (`/file?path=/assets/hello.txt`) (test-images/spin-outbound, spin-sdk 5).
    SPIN_OUTBOUND,
    "spin-outbound",
    "wasi/wasm32"
);

// The same apps as Spin OCI artifacts (`spin registry push`'s layout: the locked app and one
// Wasm layer per component, nothing containerd unpacks), platform `wasi/wasm`.
tarball_image!(
    /// spin-hello as a Spin OCI artifact (test-images/spin-hello/spin.lock.json).
    SPIN_HELLO_OCI,
    "spin-hello-oci",
    "wasi/wasm"
);
tarball_image!(
    /// spin-routes as a Spin OCI artifact (test-images/spin-routes/spin.lock.json).
    SPIN_ROUTES_OCI,
    "spin-routes-oci",
    "wasi/wasm"
);

/// A Spin application image built here: `/spin.toml` with `manifest`, and a `/hello.wasm`
/// that is a plain WASI preview 1 command (no HTTP handler).
pub fn spin_app_image(reference: &str, manifest: &str) -> Result<ImageBuilder> {
    Ok(ImageBuilder::new(reference)
        .platform("wasi", "wasm32")
        .file("/spin.toml", manifest, 0o644)
        .file("/hello.wasm", wasi_print_module("hello")?, 0o644))
}

/// A Spin app of `static_response` triggers only: `/gone` answers 410 with `x-why: moved` and
/// `gone\n`, `/teapot/...` 418 with no body.
pub static SPIN_STATIC: TestImage = TestImage::built(
    "docker.io/library/spin-static:latest",
    "wasi/wasm32",
    || {
        spin_app_image(
            "docker.io/library/spin-static:latest",
            "spin_manifest_version = 2\n[application]\nname = \"static\"\n\
             [[trigger.http]]\nroute = \"/gone\"\n\
             static_response = { status_code = 410, headers = { x-why = \"moved\" }, \
             body = \"gone\\n\" }\n\
             [[trigger.http]]\nroute = \"/teapot/...\"\nstatic_response = { status_code = 418 }\n",
        )
    },
);

/// Spin manifests that must fail at create, each in its own image (the shim reads only
/// `/spin.toml`), with `/hello.wasm` a plain WASI preview 1 command.
pub mod bad_spin {
    use super::{TestImage, spin_app_image};

    macro_rules! bad_spin_image {
        ($(#[$doc:meta])* $name:ident, $reference:literal, $body:literal) => {
            $(#[$doc])*
            pub static $name: TestImage = TestImage::built(
                concat!("docker.io/library/", $reference, ":latest"),
                "wasi/wasm32",
                || {
                    spin_app_image(
                        concat!("docker.io/library/", $reference, ":latest"),
                        concat!(
                            "spin_manifest_version = 2\n[application]\nname = \"bad\"\n",
                            $body
                        ),
                    )
                },
            );
        };
    }

    bad_spin_image!(
        /// A route names a component that does not exist.
        UNKNOWN_COMPONENT,
        "spin-bad-unknown-component",
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"nowhere\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n"
    );
    bad_spin_image!(
        /// The component's file is not in the image.
        MISSING_FILE,
        "spin-bad-missing-file",
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"missing.wasm\"\n"
    );
    bad_spin_image!(
        /// A route that is no route.
        BAD_ROUTE,
        "spin-bad-route",
        "[[trigger.http]]\nroute = \"/a/.../b\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n"
    );
    bad_spin_image!(
        /// A trigger type this shim does not run.
        REDIS_TRIGGER,
        "spin-bad-redis-trigger",
        "[[trigger.redis]]\nchannel = \"messages\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n"
    );
    bad_spin_image!(
        /// An allowed outbound host that is no host.
        BAD_OUTBOUND_HOST,
        "spin-bad-outbound-host",
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n\
         allowed_outbound_hosts = [\"example.com\"]\n"
    );
    bad_spin_image!(
        /// A component variable made of a variable the application does not declare.
        UNKNOWN_VARIABLE,
        "spin-bad-unknown-variable",
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n\
         [component.hello.variables]\nmessage = \"{{ nowhere }}\"\n"
    );
    bad_spin_image!(
        /// The component is a command, not an HTTP handler.
        NOT_HTTP,
        "spin-bad-not-http",
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"hello\"\n\
         [component.hello]\nsource = \"hello.wasm\"\n"
    );
}

// Components made by other toolchains than Rust's (scripts/build-toolchain-images.sh): each
// `/NAME.wasm`, platform `wasip2/wasm`.
tarball_image!(
    /// A `wasi:cli/run@0.2.12` command by componentize-py: prints `hello from python` and its
    /// args; `exit N` exits N.
    PYTHON_CLI,
    "python-cli",
    "wasip2/wasm"
);
tarball_image!(
    /// A `wasi:http/incoming-handler@0.2.12` server by componentize-py (importing wasi:cli and
    /// the rest at 0.2.9): `hello from python (wasi:http 0.2)`; `/trap` traps.
    PYTHON_HTTP_P2,
    "python-http-p2",
    "wasip2/wasm"
);
tarball_image!(
    /// A `wasi:http/handler@0.3.0` server by componentize-py (importing WASI 0.3.0 and 0.2.9):
    /// `hello from python (wasi:http 0.3)`; `/trap` traps.
    PYTHON_HTTP_P3,
    "python-http-p3",
    "wasip2/wasm"
);
tarball_image!(
    /// A `wasi:http/incoming-handler@0.2.12` server by componentize-js: `hello from
    /// javascript`; `/trap` throws.
    JS_HTTP,
    "js-http",
    "wasip2/wasm"
);

/// `/auth-gateway.wasm`, a `wasi:http/proxy` component that checks a JWT and proxies
/// (test-images/auth-gateway).
pub static AUTH_GATEWAY: TestImage = TestImage::tarball(
    "docker.io/library/auth-gateway:latest",
    "wasip2/wasm",
    "auth-gateway.tar",
);

/// `/tcp-echo.wasm`, a wasm32-wasip2 command on `wasi:sockets`: a TCP listener, or with
/// `connect ADDR TEXT` a client (test-images/tcp-echo).
pub static TCP_ECHO: TestImage = TestImage::tarball(
    "docker.io/library/tcp-echo:latest",
    "wasip2/wasm",
    "tcp-echo.tar",
);

/// Files that no shim can run, in an image with neither entrypoint nor command.
pub static BAD_INPUTS: TestImage = TestImage::built(
    "docker.io/library/shim-conformance-bad-inputs:latest",
    "wasip1/wasm",
    bad_inputs_image,
);

/// Paths inside [`BAD_INPUTS`].
pub mod bad {
    /// A text file with the executable bit set.
    pub const TEXT_FILE: &str = "/not-a-module.txt";
    /// The Wasm magic number followed by garbage.
    pub const INVALID_MODULE: &str = "/invalid.wasm";
    /// A valid module that imports a function no engine provides.
    pub const UNRESOLVED_IMPORT: &str = "/unresolved-import.wasm";
    /// The name of that import (module `env`).
    pub const MISSING_IMPORT: &str = "no_engine_provides_this";
    /// Not in the image at all.
    pub const MISSING_MODULE: &str = "/no-such-module.wasm";
}

fn bad_inputs_image() -> Result<ImageBuilder> {
    let unresolved = wat_module(&format!(
        r#"(module
             (import "env" "{}" (func $missing))
             (func (export "_start") call $missing))"#,
        bad::MISSING_IMPORT
    ))?;
    let mut invalid = b"\0asm\x01\0\0\0".to_vec();
    invalid.extend_from_slice(b"this is not a WebAssembly section");
    Ok(ImageBuilder::new(BAD_INPUTS.reference)
        .platform("wasip1", "wasm")
        .file(bad::TEXT_FILE, "just some text\n", 0o755)
        .file(bad::INVALID_MODULE, invalid, 0o755)
        .file(bad::UNRESOLVED_IMPORT, unresolved, 0o755))
}

/// The demo module with files to escape to: a secret outside `/data`, symlinks in `/data`
/// that point at it, and an entry point that is a symlink to a file of the host.
pub static ISOLATION: TestImage = TestImage::built(
    "docker.io/library/shim-conformance-isolation:latest",
    "wasip1/wasm",
    isolation_image,
);

/// Paths inside [`ISOLATION`] (besides `/wasi-demo-app.wasm` and `/data/hello.txt`).
pub mod isolation {
    /// Outside `/data`; content [`SECRET`].
    pub const SECRET_FILE: &str = "/secret/secret.txt";
    pub const SECRET: &str = "secret outside the preopen\n";
    /// `/data/abs-link` -> `/secret/secret.txt` (absolute).
    pub const ABSOLUTE_LINK: &str = "/data/abs-link";
    /// `/data/up-link` -> `../secret/secret.txt` (relative, leaves `/data`).
    pub const RELATIVE_LINK: &str = "/data/up-link";
    /// `/escape.wasm` -> the demo module's absolute path on the host, which the rootfs lacks.
    pub const HOST_LINK: &str = "/escape.wasm";
}

fn isolation_image() -> Result<ImageBuilder> {
    let module = demo_module()?;
    let host_module = demo_module_path();
    Ok(ImageBuilder::new(ISOLATION.reference)
        .platform("wasip1", "wasm")
        .file("/wasi-demo-app.wasm", module, 0o755)
        .file("/data/hello.txt", "hello from a file\n", 0o644)
        .file(isolation::SECRET_FILE, isolation::SECRET, 0o644)
        .symlink(isolation::ABSOLUTE_LINK, isolation::SECRET_FILE)
        .symlink(isolation::RELATIVE_LINK, "../secret/secret.txt")
        .symlink(isolation::HOST_LINK, host_module.display().to_string())
        .entrypoint(["/wasi-demo-app.wasm"]))
}

/// Modules built to break the shim, in an image with neither entrypoint nor command.
pub static HOSTILE: TestImage = TestImage::built(
    "docker.io/library/shim-conformance-hostile:latest",
    "wasip1/wasm",
    hostile_image,
);

/// Paths inside [`HOSTILE`].
pub mod hostile {
    /// The first half of the demo module.
    pub const TRUNCATED: &str = "/truncated.wasm";
    /// A valid module padded with a custom section past the shims' size limit.
    pub const OVERSIZED: &str = "/oversized.wasm";
    /// A module whose start function traps (runs at instantiation, after `start`).
    pub const START_TRAPS: &str = "/start-traps.wasm";
    /// A module importing WasmEdge's socket extension, which no preview 1 engine provides.
    pub const SOCKET_IMPORT: &str = "/sock-open.wasm";
    /// How many fuzzed modules there are: `/fuzzed-<n>.wasm`.
    pub const FUZZED: usize = 12;

    pub fn fuzzed(n: usize) -> String {
        format!("/fuzzed-{n}.wasm")
    }
}

/// The shims' module size limit as the private containerd passes it on
/// (`WASM_SHIM_MAX_MODULE_SIZE`, else the shims' default of 128 MiB).
pub fn module_size_limit() -> Result<u64> {
    let pid = crate::environment::containerd().pid();
    let environ = std::fs::read(format!("/proc/{pid}/environ"))
        .with_context(|| format!("cannot read containerd's environment (pid {pid})"))?;
    let value = environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(b"WASM_SHIM_MAX_MODULE_SIZE="))
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let Some(value) = value else {
        return Ok(128 << 20);
    };
    let (digits, shift) = match value.chars().last() {
        Some('k' | 'K') => (&value[..value.len() - 1], 10),
        Some('m' | 'M') => (&value[..value.len() - 1], 20),
        Some('g' | 'G') => (&value[..value.len() - 1], 30),
        _ => (value.as_str(), 0),
    };
    let number: u64 = digits
        .parse()
        .with_context(|| format!("WASM_SHIM_MAX_MODULE_SIZE={value:?} is not a size"))?;
    Ok(number << shift)
}

fn hostile_image() -> Result<ImageBuilder> {
    let demo = demo_module()?;
    let truncated = demo[..demo.len() / 2].to_vec();
    let small = wasi_print_module("fuzz\n")?;
    let mut oversized = small.clone();
    let padding = module_size_limit()? + (1 << 20);
    append_custom_section(&mut oversized, "padding", padding as usize);
    let start_traps = wat_module(
        r#"(module
             (memory (export "memory") 1)
             (func $boom unreachable)
             (start $boom)
             (func (export "_start")))"#,
    )?;
    let socket = wat_module(
        r#"(module
             (import "wasi_snapshot_preview1" "sock_open"
               (func $open (param i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               (drop (call $open (i32.const 1) (i32.const 1) (i32.const 0)))))"#,
    )?;
    let mut image = ImageBuilder::new(HOSTILE.reference)
        .platform("wasip1", "wasm")
        .file(hostile::TRUNCATED, truncated, 0o755)
        .file(hostile::OVERSIZED, oversized, 0o755)
        .file(hostile::START_TRAPS, start_traps, 0o755)
        .file(hostile::SOCKET_IMPORT, socket, 0o755);
    let mut random = XorShift(0x5eed_1234_abcd_0001);
    for n in 0..hostile::FUZZED {
        image = image.file(hostile::fuzzed(n), mutate(&small, &mut random), 0o755);
    }
    Ok(image)
}

/// Appends a custom section `name` of `size` zero bytes (its payload).
fn append_custom_section(module: &mut Vec<u8>, name: &str, size: usize) {
    let mut payload = leb128(name.len() as u64);
    payload.extend_from_slice(name.as_bytes());
    payload.resize(payload.len() + size, 0);
    module.push(0);
    module.extend(leb128(payload.len() as u64));
    module.extend(payload);
}

fn leb128(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A deterministic generator, so that a failing fuzzed module can be rebuilt.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `module` with a few random bytes overwritten, inserted or removed after the header
/// (a module whose header is broken is no Wasm at all, which `bad_input` covers).
fn mutate(module: &[u8], random: &mut XorShift) -> Vec<u8> {
    const HEADER: usize = 8;
    let mut bytes = module.to_vec();
    for _ in 0..1 + random.below(4) {
        let at = HEADER + random.below(bytes.len() - HEADER);
        match random.below(3) {
            0 => bytes[at] = random.next() as u8,
            1 => bytes.insert(at, random.next() as u8),
            _ if bytes.len() > HEADER + 1 => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

/// The demo module as `scripts/build-test-images.sh` built it.
fn demo_module() -> Result<Vec<u8>> {
    let path = demo_module_path();
    std::fs::read(&path).with_context(|| {
        format!(
            "cannot read the demo module {}: run scripts/build-test-images.sh (`make test` does)",
            path.display()
        )
    })
}

/// `<target>/wasm32-wasip1/release/wasi-demo-app.wasm`.
pub fn demo_module_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")));
    let path = target.join("wasm32-wasip1/release/wasi-demo-app.wasm");
    path.canonicalize().unwrap_or(path)
}

impl TestImage {
    /// An image that `build` makes in memory the first time a test needs it.
    pub const fn built(
        reference: &'static str,
        platform: &'static str,
        build: fn() -> Result<ImageBuilder>,
    ) -> Self {
        Self {
            reference,
            platform,
            source: Source::Built(build),
            namespace: None,
            imported: OnceLock::new(),
        }
    }

    const fn tarball(reference: &'static str, platform: &'static str, file: &'static str) -> Self {
        Self {
            reference,
            platform,
            source: Source::Tarball(file),
            namespace: None,
            imported: OnceLock::new(),
        }
    }

    /// A tarball image imported into containerd namespace `namespace` (the CRI suite's
    /// `k8s.io`), once per test binary.
    pub const fn tarball_in(
        namespace: &'static str,
        reference: &'static str,
        platform: &'static str,
        file: &'static str,
    ) -> Self {
        Self {
            reference,
            platform,
            source: Source::Tarball(file),
            namespace: Some(namespace),
            imported: OnceLock::new(),
        }
    }

    /// Imports the image unless this test binary already did.
    pub fn ensure_imported(&self) -> Result<()> {
        self.imported
            .get_or_init(|| self.import().map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow!(e))
    }

    /// The image as a tarball that `ctr images import` and `docker load` both read (an OCI
    /// layout with Docker's `manifest.json`).
    pub fn archive(&self) -> Result<Vec<u8>> {
        match &self.source {
            Source::Tarball(file) => {
                let path = test_images_dir().join(file);
                std::fs::read(&path).with_context(|| {
                    format!(
                        "cannot read test image {}: run scripts/build-test-images.sh (`make test` does)",
                        path.display()
                    )
                })
            }
            Source::Built(build) => build()?
                .build()
                .and_then(|archive| archive.to_tar())
                .with_context(|| format!("cannot build test image {}", self.reference)),
        }
    }

    fn import(&self) -> Result<()> {
        let tar = self.archive()?;
        // `-` reads the tarball from stdin; --platform unpacks it for that platform.
        let mut import = Ctr::new(["images", "import", "--platform", self.platform, "-"]);
        if let Some(namespace) = self.namespace {
            import = import.namespace(namespace);
        }
        import
            .stdin(tar)
            .timeout(Duration::from_secs(120))
            .output()?
            .success()
            .with_context(|| {
                format!(
                    "cannot import {} into namespace {}",
                    self.reference,
                    self.namespace.unwrap_or("of the suite")
                )
            })?;
        Ok(())
    }
}

/// `<repo>/target/test-images`, where scripts/build-test-images.sh writes the tarballs
/// (there even when CARGO_TARGET_DIR points elsewhere).
pub fn test_images_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/test-images"
    ))
}
