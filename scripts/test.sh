#!/usr/bin/env bash
# `make test`: the workspace's unit tests and the end-to-end suite (shim-conformance)
# against the private containerd, which is stopped afterwards whatever happened.
# Expects the shims and the test images to be built (`make images`).
# The exit status is the tests' status; a failed stop fails a passing run.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
cd "$repo_root"

# The WasmEdge shim is outside the workspace (it needs libwasmedge: `make build-wasmedge`).
# Once built, its unit tests run here and the suite below covers it like the other engines.
wasmedge_shim="$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")/release/containerd-shim-wasmedge-v1"
if [[ -x $wasmedge_shim ]]; then
	"$script_dir/build-wasmedge.sh" test
elif "$script_dir/build-wasmedge.sh" detect >/dev/null; then
	echo "skipped: the WasmEdge shim is not built (run make build-wasmedge to build and test it)"
else
	echo "skipped: libwasmedge not installed (run make build-wasmedge to see how to get it)"
fi

# The suite appends every test's outcome per target here, one JSON line each, for
# `make engines-table`.
results_file="$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")/conformance-results.jsonl"
mkdir -p "$(dirname "$results_file")"
: >"$results_file"
export WASM_SHIMS_RESULTS="$results_file"

# One cargo invocation over the whole workspace, as `make build` compiled it (so nothing is
# compiled twice): the unit tests and the end-to-end suite, against a private containerd
# started for it and stopped afterwards whatever happened.
exec "$script_dir/containerd.sh" run cargo test --release --workspace --no-fail-fast -- --include-ignored
