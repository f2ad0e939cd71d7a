#!/usr/bin/env bash
# `make demo`: runs the demo images through the wasmtime shim on the private containerd,
# and the Wasm demo through the WAMR shim too, then prints what a node operator does to
# get the same on their own node.
# Expects the shim and the test images to be built (`make images`). containerd is left
# running so the demo can be explored with ctr; `make containerd-stop` ends it.
set -euo pipefail

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
	local -a command=(ctr run --rm --runtime "$runtime_type" --platform "$platform" "${options[@]}" "$image" "$id" "$@")
	printf '\n$ %s\n' "${command[*]}"
	runs=$((runs + 1))
	if ! "${command[@]}"; then
		say "FAILED: $id"
		failures=$((failures + 1))
	fi
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

The WAMR shim (an interpreter: a smaller binary, slower code) installs the same way: the binary
$wamr_shim_binary, the runtime $wamr_runtime.

This demo's containerd is still running. To use it:
  eval "\$(scripts/containerd.sh env)"; ctr containers ls
Stop it with: make containerd-stop
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

	print_howto
	if ((failures > 0)); then
		say "$failures of $runs demo runs failed; containerd's log: ${CONTAINERD_ADDRESS%/*}/containerd.log"
		exit 1
	fi
}

main "$@"
