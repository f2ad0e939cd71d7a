# Entry points for building, testing and trying the shims. Everything is built with the
# release profile (tests and lints too) so that nothing is compiled twice.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all setup build build-wasmedge images containerd-start containerd-stop demo test engines-table lint clean

all: build

# Debian packages and Rust targets, then the pinned Python and JavaScript component
# toolchains under target/toolchains/ (quiet when everything is there).
setup:
	scripts/setup.sh
	scripts/setup-toolchains.sh

build: setup
	$(CARGO) build --release --workspace --all-targets

# The WasmEdge shim, kept out of the workspace: it needs a system libwasmedge, and says how
# to get one when there is none (scripts/build-wasmedge.sh).
build-wasmedge: setup
	scripts/build-wasmedge.sh

# OCI image tarballs in target/test-images/: ours (Rust), then components made by other
# toolchains (componentize-py, componentize-js).
images: build
	scripts/build-test-images.sh
	scripts/build-toolchain-images.sh

containerd-start: setup
	scripts/containerd.sh start

containerd-stop:
	scripts/containerd.sh stop

# Runs the demo images through the wasmtime and WAMR shims and prints how to do it on a node.
demo: images
	scripts/demo.sh

# Unit tests, then the end-to-end suite against a private containerd, then docs/engines.md
# (the feature table) from the suite's results, failures included.
test: images
	scripts/test.sh

# docs/engines.md again from the results the last `make test` left in
# target/conformance-results.jsonl (one JSON line per test and target), e.g. after the
# table's layout changed.
engines-table:
	scripts/test.sh engines-table

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

# Only the cost of tracing and of the guest profiler (a few minutes), into the last results and
# benches/report.md's "Debugging aids".
.PHONY: bench-debugging
bench-debugging: images
	$(CARGO) run --release -p shim-bench -- debugging

# The property tests over spec, annotation and entry point parsing with many more cases than
# `make test` gives them (256 each). FUZZ_CASES=... to change; 1,000,000 took 11 minutes on a
# busy machine and found the space-at-the-end case that 200,000 (the default) also reaches.
.PHONY: fuzz
FUZZ_CASES ?= 200000
fuzz: setup
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) test --release -p containerd-shim-wasm --test parsing_properties

# Soak: 50 long-running containers in one pod and 1,000 short ones at parallelism 16 through
# a private containerd of its own, then a count of leaks (processes, descriptors, memory,
# mounts, cgroups, state). Bounded (SOAK_DEADLINE, 1200 s); writes target/soak/report.md.
# Not part of `make test`.
.PHONY: soak
soak: images
	scripts/soak.sh

# Our wasmtime shim serving a wasi:http component against `wasmtime serve` (built from the
# wasmtime-cli crate into target/bench-http/), with wrk at 1, 16 and 64 connections: writes
# benches/http/report.md. Not part of `make test`.
.PHONY: bench-http
bench-http: setup
	benches/http/bench.sh
