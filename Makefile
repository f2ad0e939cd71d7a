# Entry points for building, testing and trying the shims. Everything is built with the
# release profile (tests and lints too) so that nothing is compiled twice.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all setup build build-wasmedge images containerd-start containerd-stop demo test engines-table lint clean

all: build

# Debian packages and Rust targets (quiet when everything is there).
setup:
	scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --all-targets

# The WasmEdge shim, kept out of the workspace: it needs a system libwasmedge, and says how
# to get one when there is none (scripts/build-wasmedge.sh).
build-wasmedge: setup
	scripts/build-wasmedge.sh

# OCI image tarballs in target/test-images/.
images: build
	scripts/build-test-images.sh

containerd-start: setup
	scripts/containerd.sh start

containerd-stop:
	scripts/containerd.sh stop

# Runs the demo images through the wasmtime and WAMR shims and prints how to do it on a node.
demo: images
	scripts/demo.sh

# Unit tests, then the end-to-end suite against a private containerd.
test: images
	scripts/test.sh

# docs/engines.md, the feature table, from the results the last `make test` left in
# target/conformance-results.jsonl (one JSON line per test and target).
engines-table:
	$(CARGO) run --release --quiet -p shim-conformance --bin engines-table -- \
		"$${CARGO_TARGET_DIR:-target}/conformance-results.jsonl" docs/engines.md

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	scripts/build-wasmedge.sh check
	shellcheck scripts/*.sh .ci/run benches/http/*.sh

clean: containerd-stop
	$(CARGO) clean

# Benchmarks against runc on their own private containerd (target/bench-containerd): writes
# benches/results/latest.json, benches/report.md and benches/plots/. Not part of `make test`.
.PHONY: bench
bench: images
	$(CARGO) run --release -p shim-bench

# Our wasmtime shim serving a wasi:http component against `wasmtime serve` (built from the
# wasmtime-cli crate into target/bench-http/), with wrk at 1, 16 and 64 connections: writes
# benches/http/report.md. Not part of `make test`.
.PHONY: bench-http
bench-http: setup
	benches/http/bench.sh
