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
#   http-hello-p3.tar       docker.io/library/http-hello-p3:latest       wasip2/wasm
#   cli-p3.tar              docker.io/library/cli-p3:latest              wasip2/wasm
#                           WASI 0.3 components: a wasi:http/service and a wasi:cli/run
#   pause.tar               docker.io/library/wasm-shims-pause:latest    linux/amd64 (CRI's sandbox_image)
#   tcp-echo.tar            docker.io/library/tcp-echo:latest            wasip2/wasm (a component)
#   tcp-echo-native.tar     docker.io/library/tcp-echo-native:latest     linux/amd64 (the same, static)
#   spin-hello.tar          docker.io/library/spin-hello:latest          wasi/wasm32
#   spin-routes.tar         docker.io/library/spin-routes:latest         wasi/wasm32
#   spin-kv.tar             docker.io/library/spin-kv:latest             wasi/wasm32
#   spin-vars.tar           docker.io/library/spin-vars:latest           wasi/wasm32
#   spin-outbound.tar       docker.io/library/spin-outbound:latest       wasi/wasm32
#   spin-kv-p3.tar          docker.io/library/spin-kv-p3:latest          wasi/wasm32 (spin-sdk 7)
#                           Spin apps: /spin.toml and its components beside it (spin-sdk 3 for
#                           wasm32-wasip1, spin-sdk 5 for wasm32-wasip2)
#   spin-hello-oci.tar      docker.io/library/spin-hello-oci:latest      wasi/wasm
#   spin-routes-oci.tar     docker.io/library/spin-routes-oci:latest     wasi/wasm
#                           the same apps as Spin OCI artifacts (`spin registry push`'s layout:
#                           the locked app and one layer per module; see test-images/spin-apps.md)
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

echo "building wasi-demo-app and spin-hello (wasm32-wasip1), wasi-demo-app, http-hello," \
    "http-hello-p3, cli-p3, auth-gateway, tcp-echo and the spin apps (wasm32-wasip2), native-demo," \
    "pause and tcp-echo (static) and image-builder" >&2
cargo build --release -p wasi-demo-app -p spin-hello --target wasm32-wasip1
cargo build --release -p wasi-demo-app -p http-hello -p http-hello-p3 -p cli-p3 -p auth-gateway \
    -p tcp-echo -p spin-routes-users -p spin-routes-static -p spin-routes-root \
    -p spin-kv -p spin-vars -p spin-outbound -p spin-kv-p3 --target wasm32-wasip2
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -p native-demo -p pause -p tcp-echo --target "$native_target"
cargo build --release -p image-builder

wasm_module="$target_dir/wasm32-wasip1/release/wasi-demo-app.wasm"
components="$target_dir/wasm32-wasip2/release"
tcp_echo="$target_dir/wasm32-wasip2/release/tcp-echo.wasm"
native_demo="$target_dir/$native_target/release/native-demo"
pause="$target_dir/$native_target/release/pause"
tcp_echo_native="$target_dir/$native_target/release/tcp-echo"
image_builder="$target_dir/release/image-builder"

# A dynamically linked executable would fail inside the image, which has no libc: catch it here.
for executable in "$native_demo" "$pause" "$tcp_echo_native"; do
    if readelf --program-headers "$executable" | grep -q INTERP; then
        echo "error: $executable is dynamically linked; the image needs a static executable" >&2
        exit 1
    fi
done

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

# A Wasm OCI artifact: the module is the image's one layer as it is, not a tar, titled with its
# file name, which the config's entry point names (CRI and Docker need a command). containerd
# 1.7+ leaves such a layer packed; the shim reads it from the content store.
"$image_builder" --name docker.io/library/wasi-demo-app-artifact:latest --platform wasi/wasm \
    --raw-layer "application/vnd.wasm.content.layer.v1+wasm=$wasm_module@wasi-demo-app.wasm" \
    --entrypoint /wasi-demo-app.wasm \
    --out "$out_dir/wasi-demo-app-artifact.tar"

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

"$image_builder" --name docker.io/library/http-hello-p3:latest --platform wasip2/wasm \
    --file "/http-hello-p3.wasm=$components/http_hello_p3.wasm:0755" \
    --entrypoint /http-hello-p3.wasm \
    --out "$out_dir/http-hello-p3.tar"

"$image_builder" --name docker.io/library/cli-p3:latest --platform wasip2/wasm \
    --file "/cli-p3.wasm=$components/cli_p3.wasm:0755" \
    --entrypoint /cli-p3.wasm \
    --out "$out_dir/cli-p3.tar"

"$image_builder" --name docker.io/library/auth-gateway:latest --platform wasip2/wasm \
    --file "/auth-gateway.wasm=$components/auth_gateway.wasm:0755" \
    --entrypoint /auth-gateway.wasm \
    --out "$out_dir/auth-gateway.tar"

"$image_builder" --name docker.io/library/wasm-shims-pause:latest --platform linux/amd64 \
    --file "/pause=$pause:0755" \
    --entrypoint /pause \
    --out "$out_dir/pause.tar"

"$image_builder" --name docker.io/library/tcp-echo:latest --platform wasip2/wasm \
    --file "/tcp-echo.wasm=$tcp_echo:0755" \
    --entrypoint /tcp-echo.wasm \
    --out "$out_dir/tcp-echo.tar"

"$image_builder" --name docker.io/library/tcp-echo-native:latest --platform linux/amd64 \
    --file "/tcp-echo=$tcp_echo_native:0755" \
    --entrypoint /tcp-echo \
    --out "$out_dir/tcp-echo-native.tar"

# Spin apps as `spin build` and a Dockerfile make them: spin.toml at the root, each component
# beside it under the name its `source` gives.
spin_apps="$repo_root/test-images"
"$image_builder" --name docker.io/library/spin-hello:latest --platform wasi/wasm32 \
    --file "/spin.toml=$spin_apps/spin-hello/spin.toml:0644" \
    --file "/hello.wasm=$target_dir/wasm32-wasip1/release/spin_hello.wasm:0644" \
    --out "$out_dir/spin-hello.tar"

"$image_builder" --name docker.io/library/spin-routes:latest --platform wasi/wasm32 \
    --file "/spin.toml=$spin_apps/spin-routes/spin.toml:0644" \
    --file "/users.wasm=$components/spin_routes_users.wasm:0644" \
    --file "/static.wasm=$components/spin_routes_static.wasm:0644" \
    --file "/root.wasm=$components/spin_routes_root.wasm:0644" \
    --out "$out_dir/spin-routes.tar"

# The same apps as Spin OCI artifacts, laid out as `spin registry push` lays them out: the
# locked app (test-images/<app>/spin.lock.json with the modules' digests filled in) as a
# layer named by the config's label, and one Wasm layer per component. containerd leaves
# every layer packed; the shim reads them from its content store. Raw layers: no Docker
# manifest.
"$image_builder" --name docker.io/library/spin-hello-oci:latest --platform wasi/wasm \
    --spin-locked-app "$spin_apps/spin-hello/spin.lock.json" \
    --spin-component "spin-hello=$target_dir/wasm32-wasip1/release/spin_hello.wasm" \
    --no-docker-manifest --out "$out_dir/spin-hello-oci.tar"

"$image_builder" --name docker.io/library/spin-routes-oci:latest --platform wasi/wasm \
    --spin-locked-app "$spin_apps/spin-routes/spin.lock.json" \
    --spin-component "users=$components/spin_routes_users.wasm" \
    --spin-component "static=$components/spin_routes_static.wasm" \
    --spin-component "root=$components/spin_routes_root.wasm" \
    --no-docker-manifest --out "$out_dir/spin-routes-oci.tar"
for app in kv vars kv-p3; do
    "$image_builder" --name "docker.io/library/spin-$app:latest" --platform wasi/wasm32 \
        --file "/spin.toml=$spin_apps/spin-$app/spin.toml:0644" \
        --file "/$app.wasm=$components/spin_${app//-/_}.wasm:0644" \
        --out "$out_dir/spin-$app.tar"
done

"$image_builder" --name docker.io/library/spin-outbound:latest --platform wasi/wasm32 \
    --file "/spin.toml=$spin_apps/spin-outbound/spin.toml:0644" \
    --file "/outbound.wasm=$components/spin_outbound.wasm:0644" \
    --file "/assets/hello.txt=$spin_apps/spin-outbound/assets/hello.txt:0644" \
    --file "/index.html=$spin_apps/spin-outbound/index.html:0644" \
    --file "/notes/a.txt=$spin_apps/spin-outbound/notes/a.txt:0644" \
    --file "/notes/deep/b.txt=$spin_apps/spin-outbound/notes/deep/b.txt:0644" \
    --out "$out_dir/spin-outbound.tar"
