#!/usr/bin/env bash
# `make test`: the workspace's unit tests and the end-to-end suites (shim-conformance, and
# cri-conformance through the CRI plugin) on a matrix of private containerds, each stopped
# afterwards whatever happened; then docs/engines.md, the feature table, from the results.
#
#   1. containerd 1.6 (Debian 12's, the default): everything but the Docker Engine's tests;
#   2. containerd 1.7 and 3. containerd 2.1 (scripts/platforms.sh): the tests whose outcome
#      can differ by containerd version (see matrix_tests below);
#   4. containerd 2.1 with CRI's use_local_image_pull (phase 3 pulls through the transfer
#      service, 2.x's default): CRI's pull from a registry once more, the other way;
#   5. containerd 2.1 with a private dockerd (scripts/dockerd.sh): the Docker Engine's tests.
#
# Every phase runs whatever the others did. Expects the shims and the test images to be
# built (`make images`). The exit status is the tests' status over all phases; a failed stop
# or table fails a passing run.
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

# The conformance suite's test files that run on 1.7 and 2.1 too: those that exercise what
# containerd itself does around a shim, which changes between versions: starting the shim and
# the task API (shim_start, tasks, exit_codes, output, stdin, terminal: ttrpc v3 and the
# bootstrap of 2.x, the stdio FIFOs, console sockets), the events it forwards (events, exec),
# signals, kill and a shim that dies (signals, faults), containerd's own restart and
# reconnection (restart), one shim per sandbox (sandbox), what containerd removes
# (cleanup), the runtime options of config v2 and v3 (cgroups), the trace context it sends
# to shims (tracing), and images: unpacking for the Wasm platforms, content-store artifacts
# (images, wasm_artifacts, and Spin's in spin_oci).
# The rest checks the shims' own work (modules, WASI, isolation, limits, HTTP, the precompile
# cache), the same whichever containerd started them, and stays on 1.6 alone.
readonly matrix_tests=(
	shim_start tasks exit_codes output stdin terminal events exec signals faults restart
	sandbox cleanup cgroups images wasm_artifacts spin_oci tracing
)
# The Docker Engine's tests need dockerd, which runs on containerd 2.1 only (phase 5).
readonly docker_test=docker_engine

# The names of the workspace's test targets (tests/*.rs) under a path matching the regex
# PATH_PATTERN (JSON-quoted in cargo's metadata), one per line.
test_targets() {
	cargo metadata --no-deps --format-version 1 |
		grep -o "\"src_path\":\"$1/tests/[^/\"]*\\.rs\"" | sed 's|.*/||; s|\.rs"$||' | sort -u
}

# One phase's cargo commands, run by `containerd.sh run` (so with that containerd's
# environment); all of them run, and the status is the last failure's.
run_phase() {
	local phase=$1 failed=0 name
	local -a targets=()
	echo "test.sh: phase $phase on containerd $WASM_SHIMS_CONTAINERD_VERSION"
	case $phase in
	all)
		# One cargo invocation over the whole workspace, as `make build` compiled it (leaving
		# a package out would unify features differently and compile most of it again), with
		# every test target but the Docker Engine's (cargo cannot leave one out), then the
		# doc tests, which naming targets leaves out.
		while read -r name; do
			[[ $name == "$docker_test" ]] || targets+=(--test "$name")
		done < <(test_targets '[^"]*')
		cargo test --release --workspace --no-fail-fast --lib --bins "${targets[@]}" \
			-- --include-ignored || failed=$?
		cargo test --release --workspace --doc || failed=$?
		;;
	matrix)
		for name in "${matrix_tests[@]}"; do
			targets+=(--test "$name")
		done
		# The CRI plugin is the part of containerd that changed most (config v3, the
		# transfer service's pulls, -info on every runtime, pod sandboxes): all of it.
		while read -r name; do
			targets+=(--test "$name")
		done < <(test_targets '[^"]*/cri')
		# Over the workspace, as `make build` compiled it (so in every phase): naming packages
		# would unify features differently and compile the suites' dependencies again.
		cargo test --release --workspace --no-fail-fast "${targets[@]}" \
			-- --include-ignored || failed=$?
		;;
	local-pull)
		cargo test --release --workspace --no-fail-fast --test registry_pull \
			-- --include-ignored || failed=$?
		;;
	docker)
		cargo test --release --workspace --no-fail-fast --test "$docker_test" \
			-- --include-ignored || failed=$?
		;;
	esac
	return "$failed"
}

case ${1:-} in
'') ;;
engines-table)
	engines_table
	exit
	;;
# Internal: scripts/test.sh phase all|matrix|local-pull|docker, under containerd.sh run
# (below).
phase)
	run_phase "$2"
	exit
	;;
*)
	echo "usage: $0 [engines-table]" >&2
	exit 2
	;;
esac

# The WasmEdge shim is outside the workspace (it needs libwasmedge). Where the library is
# (build-wasmedge.sh detect: /usr/local, WASMEDGE_DIR, ...) the shim is built here, its unit
# tests run, and the suites below cover it like the other engines; elsewhere they skip it.
# A shim left from an earlier build without the library now would be tested stale: removed.
wasmedge_shim="$(realpath -m "${CARGO_TARGET_DIR:-$repo_root/target}")/release/containerd-shim-wasmedge-v1"
status=0
if "$script_dir/build-wasmedge.sh" detect >/dev/null; then
	if "$script_dir/build-wasmedge.sh" build; then
		"$script_dir/build-wasmedge.sh" test || status=$?
	else
		status=1
		rm -f "$wasmedge_shim"
		echo "test.sh: the WasmEdge shim did not build: the suites skip it" >&2
	fi
else
	rm -f "$wasmedge_shim"
	echo "skipped: libwasmedge not installed (run make build-wasmedge to see how to get it)"
fi

mkdir -p "$(dirname "$results_file")"
: >"$results_file"
export WASM_SHIMS_RESULTS="$results_file"

# Each phase against a private containerd of its version, started for it and stopped
# afterwards whatever happened (each version has a state dir of its own). The time each
# took is printed, as the whole must stay well under 40 minutes on 2 cores.
phase() {
	local version=$1 start=$SECONDS
	shift
	WASM_SHIMS_CONTAINERD=$version "$script_dir/containerd.sh" run "$@" || status=$?
	echo "test.sh: phase ${*: -1} on containerd $version took $((SECONDS - start))s"
}
phase 1.6 "$script_dir/test.sh" phase all
phase 1.7 "$script_dir/test.sh" phase matrix
phase 2.1 "$script_dir/test.sh" phase matrix
WASM_SHIMS_CRI_LOCAL_PULL=true phase 2.1 "$script_dir/test.sh" phase local-pull
phase 2.1 "$script_dir/dockerd.sh" run "$script_dir/test.sh" phase docker

if ! engines_table; then
	echo "test.sh: docs/engines.md not regenerated (see above)" >&2
	((status != 0)) || status=1
fi
exit "$status"
