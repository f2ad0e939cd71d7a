#!/usr/bin/env bash
# Builds `wasmtime serve` (crate wasmtime-cli, the same wasmtime release as the shim) into
# <repo>/target/bench-http/wasmtime-cli, with only the features `serve` needs (`run` and
# `component-model-async` included: serve's code uses them), and prints the binary's path.
# Idempotent: nothing is built when that version is already there.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${WASMTIME_CLI_VERSION:-48.0.8}"
root="$repo_root/target/bench-http/wasmtime-cli"

if ! "$root/bin/wasmtime" --version 2>/dev/null | grep -qF "wasmtime $version"; then
	echo "building wasmtime-cli $version (serve only) into $root" >&2
	# Its own target dir: the CLI's feature set differs from the shim's, so nothing is shared.
	CARGO_TARGET_DIR="$repo_root/target/bench-http/cargo-target" \
		cargo install --quiet --locked --root "$root" --version "=$version" \
		--no-default-features --features run,serve,component-model-async,cranelift,pooling-allocator,parallel-compilation \
		wasmtime-cli >&2
fi
echo "$root/bin/wasmtime"
