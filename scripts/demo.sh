#!/usr/bin/env bash
# `make demo`: runs the demo images through the wasmtime shim on the private containerd 2.1,
# and the Wasm demo through the WAMR shim too, then once more through a private Docker Engine
# on that containerd (scripts/dockerd.sh), and prints what a node operator does to get the
# same on their own node.
# Expects the shim and the test images to be built (`make images`). containerd and dockerd
# are left running so the demo can be explored with ctr and docker; the last lines say how
# to stop them.
set -euo pipefail

# The containerd Docker runs on here (scripts/dockerd.sh requires it).
export WASM_SHIMS_CONTAINERD=${WASM_SHIMS_CONTAINERD:-2.1}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
images_dir=$repo_root/target/test-images
shim_bin_dir=$(realpath -m "${SHIM_BIN_DIR:-${CARGO_TARGET_DIR:-$repo_root/target}/release}")
readonly runtime=io.containerd.wasmtime.v1
readonly shim_binary=containerd-shim-wasmtime-v1
readonly wamr_runtime=io.containerd.wamr.v1
readonly wamr_shim_binary=containerd-shim-wamr-v1
readonly wasm_image=docker.io/library/wasi-demo-app:latest
readonly wasm_platform=wasip1/wasm
readonly native_image=docker.io/library/native-demo:latest
readonly native_platform=linux/amd64
readonly docker_image=docker.io/library/wasi-demo-app-wasi:latest
readonly docker_platform=wasi/wasm32

say() { printf 'demo.sh: %s\n' "$*" >&2; }

import_image() {
	local tarball=$images_dir/$1 platform=$2
	[[ -f $tarball ]] || {
		say "error: $tarball is missing: run scripts/build-test-images.sh (make images)"
		exit 1
	}
	ctr images import --platform "$platform" "$tarball" >/dev/null
}

runs=0
failures=0

# Runs a demo command, printed first as a user would type it; counts the failures.
run_command() {
	printf '\n$ %s\n' "$*"
	runs=$((runs + 1))
	if ! "$@"; then
		say "FAILED: $*"
		failures=$((failures + 1))
	fi
}

# run_demo RUNTIME ID IMAGE PLATFORM [CTR-RUN-OPTIONS...] -- ARGS...
run_demo() {
	local runtime_type=$1 id=$2 image=$3 platform=$4
	shift 4
	local -a options=()
	while [[ $1 != -- ]]; do
		options+=("$1")
		shift
	done
	shift
	# A demo interrupted earlier may have left its container behind.
	ctr task delete --force "$id" >/dev/null 2>&1 || true
	ctr containers delete "$id" >/dev/null 2>&1 || true
	run_command ctr run --rm --runtime "$runtime_type" --platform "$platform" "${options[@]}" "$image" "$id" "$@"
}

# The Wasm demo as a Docker user runs it, on a private dockerd in front of the same containerd.
docker_demo() {
	local tarball=$images_dir/wasi-demo-app-wasi.tar
	[[ -f $tarball ]] || {
		say "error: $tarball is missing: run scripts/build-test-images.sh (make images)"
		exit 1
	}
	"$script_dir/dockerd.sh" start
	local env_exports
	env_exports=$("$script_dir/dockerd.sh" env)
	eval "$env_exports"
	printf '\n== Docker Engine %s on containerd %s ==\n' "$WASM_SHIMS_DOCKER_VERSION" "$WASM_SHIMS_CONTAINERD_VERSION"
	run_command docker load --input "$tarball"
	run_command docker run --rm --runtime "$runtime" --platform "$docker_platform" "$docker_image" echo hello from docker
}

print_howto() {
	cat <<EOF

== On your own node (containerd 1.6 or newer) ==

1. Put the shim on containerd's PATH (containerd maps the runtime name
   $runtime to the binary $shim_binary):

     install -m 0755 $shim_bin_dir/$shim_binary /usr/local/bin/

2. With ctr nothing else is needed:

     ctr images import --platform $wasm_platform $images_dir/wasi-demo-app.tar
     ctr run --rm --runtime $runtime --platform $wasm_platform $wasm_image demo /wasi-demo-app.wasm echo hello

3. For Kubernetes (CRI), register the runtime in /etc/containerd/config.toml
   (config version 2), then restart containerd:

     [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wasmtime]
       runtime_type = "$runtime"

   and select it from a pod with this RuntimeClass:

     apiVersion: node.k8s.io/v1
     kind: RuntimeClass
     metadata:
       name: wasmtime
     handler: wasmtime

4. For Docker (Engine 23 or newer), turn on the containerd image store in
   /etc/docker/daemon.json, restart dockerd, and run as above (docs/docker.md):

     { "features": { "containerd-snapshotter": true } }

     docker load --input $images_dir/wasi-demo-app-wasi.tar
     docker run --rm --runtime $runtime --platform $docker_platform $docker_image echo hello

The WAMR shim (an interpreter: a smaller binary, slower code) installs the same way: the binary
$wamr_shim_binary, the runtime $wamr_runtime.

This demo's containerd $WASM_SHIMS_CONTAINERD and dockerd are still running. To use them:
  export WASM_SHIMS_CONTAINERD=$WASM_SHIMS_CONTAINERD
  eval "\$(scripts/containerd.sh env)"; ctr containers ls
  eval "\$(scripts/dockerd.sh env)"; docker ps -a
Stop them with: WASM_SHIMS_CONTAINERD=$WASM_SHIMS_CONTAINERD scripts/dockerd.sh stop; WASM_SHIMS_CONTAINERD=$WASM_SHIMS_CONTAINERD scripts/containerd.sh stop
EOF
}

main() {
	local binary
	for binary in "$shim_binary" "$wamr_shim_binary"; do
		[[ -x $shim_bin_dir/$binary ]] ||
			say "warning: $shim_bin_dir/$binary not found: its runs will fail (cargo build --release)"
	done
	"$script_dir/containerd.sh" start
	local env_exports
	env_exports=$("$script_dir/containerd.sh" env)
	eval "$env_exports"

	import_image wasi-demo-app.tar "$wasm_platform"
	import_image native-demo.tar "$native_platform"

	run_demo "$runtime" demo-echo "$wasm_image" "$wasm_platform" -- /wasi-demo-app.wasm echo hello
	run_demo "$runtime" demo-args "$wasm_image" "$wasm_platform" -- /wasi-demo-app.wasm args
	run_demo "$runtime" demo-env "$wasm_image" "$wasm_platform" --env GREETING=hi -- /wasi-demo-app.wasm env
	run_demo "$runtime" demo-cat "$wasm_image" "$wasm_platform" -- /wasi-demo-app.wasm cat /data/hello.txt
	run_demo "$runtime" demo-native "$native_image" "$native_platform" -- /native-demo echo hello from native
	run_demo "$wamr_runtime" demo-wamr-echo "$wasm_image" "$wasm_platform" -- /wasi-demo-app.wasm echo hello from wamr
	run_demo "$wamr_runtime" demo-wamr-cat "$wasm_image" "$wasm_platform" -- /wasi-demo-app.wasm cat /data/hello.txt
	docker_demo

	print_howto
	if ((failures > 0)); then
		say "$failures of $runs demo runs failed; containerd's log: ${CONTAINERD_ADDRESS%/*}/containerd.log"
		exit 1
	fi
}

main "$@"
