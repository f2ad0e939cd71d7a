#!/usr/bin/env bash
# `make soak`: the soak run (shims/conformance/src/bin/soak.rs) against a private containerd
# of its own (state in target/soak-containerd, so a `make test` beside it is not disturbed),
# stopped afterwards whatever happened. Writes target/soak/report.md and results.json.
# Bounded: SOAK_DEADLINE seconds (default 1200) for the short containers; SOAK_SHORT,
# SOAK_PARALLEL, SOAK_LONG and SOAK_RUNTIME change the load (see soak.rs).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
cd "$repo_root"

export WASM_SHIMS_STATE="${WASM_SHIMS_STATE:-$repo_root/target/soak-containerd}"

exec "$script_dir/containerd.sh" run cargo run --release -p shim-conformance --bin soak
