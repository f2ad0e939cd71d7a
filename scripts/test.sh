#!/usr/bin/env bash
# `make test`: the workspace's unit tests and the end-to-end suite (shim-conformance)
# against the private containerd, which is stopped afterwards whatever happened; then
# docs/engines.md, the feature table, from the suite's results.
# Expects the shims and the test images to be built (`make images`).
# The exit status is the tests' status; a failed stop or table fails a passing run.
#
# Usage: scripts/test.sh               the tests, then the table
#        scripts/test.sh engines-table the table alone, from the last run's results
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
cd "$repo_root"

# The suite appends every test's outcome per target here, one JSON line each.
results_file="$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")/conformance-results.jsonl"

# docs/engines.md from the results file. It is written whether or not the tests passed: the
# table shows failures too. The binary refuses an empty results file (the run recorded
# nothing, e.g. containerd did not start), so such a run leaves the table as it was.
engines_table() {
	cargo run --release --quiet -p shim-conformance --bin engines-table -- \
		"$results_file" "$repo_root/docs/engines.md"
}

case ${1:-} in
'') ;;
engines-table)
	engines_table
	exit
	;;
*)
	echo "usage: $0 [engines-table]" >&2
	exit 2
	;;
esac

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

mkdir -p "$(dirname "$results_file")"
: >"$results_file"
export WASM_SHIMS_RESULTS="$results_file"

# One cargo invocation over the whole workspace, as `make build` compiled it (so nothing is
# compiled twice): the unit tests and the end-to-end suite, against a private containerd
# started for it and stopped afterwards whatever happened.
status=0
"$script_dir/containerd.sh" run cargo test --release --workspace --no-fail-fast -- --include-ignored ||
	status=$?

if ! engines_table; then
	echo "test.sh: docs/engines.md not regenerated (see above)" >&2
	((status != 0)) || status=1
fi
exit "$status"
