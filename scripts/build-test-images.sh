#!/usr/bin/env bash
# Builds the demo programs (wasi-demo-app for wasm32-wasip1, native-demo as a static ELF) and the
# image builder, then writes the test image tarballs into <repo>/target/test-images/:
#   wasi-demo-app.tar       docker.io/library/wasi-demo-app:latest       wasip1/wasm
#   wasi-demo-app-wasi.tar  docker.io/library/wasi-demo-app-wasi:latest  wasi/wasm32
#   native-demo.tar         docker.io/library/native-demo:latest         linux/amd64
#   wasi-demo-app-component.tar  docker.io/library/wasi-demo-app-component:latest  wasip2/wasm
#                           the same program as a wasi:cli/run component (wasm32-wasip2)
#   http-hello.tar          docker.io/library/http-hello:latest          wasip2/wasm
#   auth-gateway.tar        docker.io/library/auth-gateway:latest        wasip2/wasm
#                           wasi:http/proxy components (wasm32-wasip2)
# Safe to run again: everything is rebuilt incrementally and the tarballs are replaced with
# byte-identical ones when nothing changed. Honors CARGO_TARGET_DIR.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Resolve a relative CARGO_TARGET_DIR against the caller's directory, as cargo would.
target_dir="$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")"
export CARGO_TARGET_DIR="$target_dir"
out_dir="$repo_root/target/test-images"
hello_file="$repo_root/test-images/data/hello.txt"

# The native demo's target is spelled out so crt-static applies to it alone (not to build
# scripts, not to host builds of the rest of the workspace).
native_target="x86_64-unknown-linux-gnu"

cd "$repo_root"

echo "building wasi-demo-app (wasm32-wasip1, wasm32-wasip2), http-hello and auth-gateway" \
    "(wasm32-wasip2), native-demo (static) and image-builder" >&2
cargo build --release -p wasi-demo-app --target wasm32-wasip1
cargo build --release -p wasi-demo-app -p http-hello -p auth-gateway --target wasm32-wasip2
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -p native-demo --target "$native_target"
cargo build --release -p image-builder

wasm_module="$target_dir/wasm32-wasip1/release/wasi-demo-app.wasm"
components="$target_dir/wasm32-wasip2/release"
native_demo="$target_dir/$native_target/release/native-demo"
image_builder="$target_dir/release/image-builder"

# A dynamically linked native-demo would fail inside the image, which has no libc: catch it here.
if readelf --program-headers "$native_demo" | grep -q INTERP; then
    echo "error: $native_demo is dynamically linked; the image needs a static executable" >&2
    exit 1
fi

mkdir -p "$out_dir"

"$image_builder" --name docker.io/library/wasi-demo-app:latest --platform wasip1/wasm \
    --file "/wasi-demo-app.wasm=$wasm_module:0755" \
    --file "/data/hello.txt=$hello_file:0644" \
    --entrypoint /wasi-demo-app.wasm \
    --out "$out_dir/wasi-demo-app.tar"

"$image_builder" --name docker.io/library/wasi-demo-app-wasi:latest --platform wasi/wasm32 \
    --file "/wasi-demo-app.wasm=$wasm_module:0755" \
    --file "/data/hello.txt=$hello_file:0644" \
    --entrypoint /wasi-demo-app.wasm \
    --out "$out_dir/wasi-demo-app-wasi.tar"

"$image_builder" --name docker.io/library/native-demo:latest --platform linux/amd64 \
    --file "/native-demo=$native_demo:0755" \
    --file "/data/hello.txt=$hello_file:0644" \
    --entrypoint /native-demo \
    --out "$out_dir/native-demo.tar"

"$image_builder" --name docker.io/library/wasi-demo-app-component:latest --platform wasip2/wasm \
    --file "/wasi-demo-app.wasm=$components/wasi-demo-app.wasm:0755" \
    --file "/data/hello.txt=$hello_file:0644" \
    --entrypoint /wasi-demo-app.wasm \
    --out "$out_dir/wasi-demo-app-component.tar"

"$image_builder" --name docker.io/library/http-hello:latest --platform wasip2/wasm \
    --file "/http-hello.wasm=$components/http_hello.wasm:0755" \
    --entrypoint /http-hello.wasm \
    --out "$out_dir/http-hello.tar"

"$image_builder" --name docker.io/library/auth-gateway:latest --platform wasip2/wasm \
    --file "/auth-gateway.wasm=$components/auth_gateway.wasm:0755" \
    --entrypoint /auth-gateway.wasm \
    --out "$out_dir/auth-gateway.tar"
