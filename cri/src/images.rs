//! The images pods run, imported into containerd's `k8s.io` namespace (where the CRI plugin
//! looks) once per test binary. Nothing is pulled: containerd 1.6's PullImage always asks a
//! registry, so the tests import the tarballs of scripts/build-test-images.sh and use their
//! references, which CRI then finds locally. The importing is the conformance suite's.

use shim_conformance::images::TestImage;

/// The containerd namespace of the CRI plugin.
pub const CRI_NAMESPACE: &str = "k8s.io";

/// An image tarball from `<repo>/target/test-images/`, imported into [`CRI_NAMESPACE`].
pub type Image = TestImage;

/// The Wasm demo, `/wasi-demo-app.wasm` (platform wasip1/wasm).
pub static WASI_DEMO_APP: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/wasi-demo-app:latest",
    "wasip1/wasm",
    "wasi-demo-app.tar",
);

/// The Wasm demo as a Wasm OCI artifact: its module is the one layer, not a tar (containerd
/// 1.7 and later leave it packed and the shim reads it from the content store).
pub static WASI_DEMO_APP_ARTIFACT: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/wasi-demo-app-artifact:latest",
    "wasi/wasm",
    "wasi-demo-app-artifact.tar",
);

/// The native demo, `/native-demo` (static, linux/amd64): the sidecar.
pub static NATIVE_DEMO: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/native-demo:latest",
    "linux/amd64",
    "native-demo.tar",
);

/// A wasm32-wasip2 component listening on TCP (`/tcp-echo.wasm PORT`).
pub static TCP_ECHO: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/tcp-echo:latest",
    "wasip2/wasm",
    "tcp-echo.tar",
);

/// The same listener as a static native program, for the sidecar.
pub static TCP_ECHO_NATIVE: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/tcp-echo-native:latest",
    "linux/amd64",
    "tcp-echo-native.tar",
);

/// The seed's Spin app (`/spin.toml` and `/hello.wasm`), for the `spin` handler.
pub static SPIN_HELLO: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/spin-hello:latest",
    "wasi/wasm32",
    "spin-hello.tar",
);

/// The seed's Spin app as a Spin OCI artifact (`spin registry push`'s layout: the locked app
/// and the module as layers containerd leaves packed).
pub static SPIN_HELLO_OCI: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/spin-hello-oci:latest",
    "wasi/wasm",
    "spin-hello-oci.tar",
);

/// The pause program, the CRI plugin's `sandbox_image` (scripts/containerd.sh).
pub static PAUSE: Image = Image::tarball_in(
    CRI_NAMESPACE,
    "docker.io/library/wasm-shims-pause:latest",
    "linux/amd64",
    "pause.tar",
);
