#!/usr/bin/env bash
# `make bench-http`: our wasmtime shim against `wasmtime serve` (same wasmtime release, same
# component) in the same run, with wrk at 1, 16 and 64 connections, for three pairs:
#   p2        test-images/http-hello (wasi:http/proxy@0.2), a fresh instance per request in both;
#   p3        test-images/http-hello-p3 (wasi:http/service@0.3), a fresh instance per request in
#             both (our default; wasmtime serve with --max-instance-reuse-count 1);
#   p3-reuse  the same 0.3 component, each instance serving up to 128 requests, 16 at once
#             (our annotations io.containerd.wasm.http.max-instance-reuse and
#             ...max-instance-concurrent-reuse; wasmtime serve's defaults for 0.3);
#   spin      the Spin app test-images/spin-routes on containerd-shim-spin-v2, GET / routed to
#             its root component (spin-sdk 5, wasm32-wasip2) with Spin's headers, against
#             wasmtime serve serving that component alone: what Spin's trigger costs.
# Each pair runs in several rounds that alternate which server goes first (the report gives
# medians over the rounds). Writes benches/http/report.md and the raw wrk output in
# target/bench-http/raw/. Not part of `make test`.
#
# Both servers listen on 127.0.0.1 inside the network namespace of a private containerd
# (its own state dir, target/bench-http/containerd): ours through `ctr run --net-host`,
# wasmtime serve and wrk entered with nsenter; wasmtime serve in a cpu cgroup beside the
# container's. Settings (environment):
#   BENCH_HTTP_DURATION   seconds per wrk run (default 10)
#   BENCH_HTTP_ROUNDS     rounds of every (server, connections) run (default 3)
#   BENCH_HTTP_PAIRS      which pairs to run (default "p2 p3 p3-reuse spin")
#   BENCH_HTTP_NOTE       a line for the report (e.g. what else ran on the machine)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench_dir="$repo_root/benches/http"
work_dir="$repo_root/target/bench-http"
raw_dir="$work_dir/raw"
duration="${BENCH_HTTP_DURATION:-10}"
rounds="${BENCH_HTTP_ROUNDS:-3}"
read -r -a pairs <<<"${BENCH_HTTP_PAIRS:-p2 p3 p3-reuse spin}"
connections=(1 16 64)
ours_port=18180
theirs_port=18181

say() { printf 'bench-http: %s\n' "$*" >&2; }

install_wrk() {
	[[ $(dpkg-query --show --showformat='${db:Status-Status}' wrk 2>/dev/null) == installed ]] && return 0
	((EUID == 0)) || { say "wrk is missing; run as root to install it"; exit 1; }
	say "installing wrk"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
}

install_wrk
cd "$repo_root"
say "building the shims and the test images"
# The whole workspace, as `make build` compiles it: building single packages would unify
# features differently and compile most of wasmtime again.
cargo build --release --workspace --all-targets
scripts/build-test-images.sh
wasmtime_cli=$("$bench_dir/build-wasmtime-serve.sh")
components="${CARGO_TARGET_DIR:-$repo_root/target}/wasm32-wasip2/release"

export WASM_SHIMS_STATE="$work_dir/containerd"
mkdir -p "$raw_dir"
rm -f "$raw_dir"/*

container_id=""
theirs_pid=""
ours_pid=""
serve_cgroup=""
stop_servers() {
	if [[ -n $theirs_pid ]]; then
		kill "$theirs_pid" 2>/dev/null || true
		wait "$theirs_pid" 2>/dev/null || true
		theirs_pid=""
	fi
	if [[ -n $ours_pid ]]; then
		ctr task kill -s SIGKILL "$container_id" >/dev/null 2>&1 || true
		wait "$ours_pid" 2>/dev/null || true
		ours_pid=""
	fi
	[[ -z $container_id ]] || ctr container delete "$container_id" >/dev/null 2>&1 || true
}
cleanup() {
	local status=$?
	stop_servers
	[[ -z $serve_cgroup ]] || rmdir "$serve_cgroup" 2>/dev/null || true
	scripts/containerd.sh stop || status=1
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

scripts/containerd.sh start
eval "$(scripts/containerd.sh env)"
netns="/proc/$WASM_SHIMS_CONTAINERD_PID/ns/net"
in_netns() { nsenter --net="$netns" "$@"; }
ctr images import --platform wasip2/wasm target/test-images/http-hello.tar >/dev/null
ctr images import --platform wasip2/wasm target/test-images/http-hello-p3.tar >/dev/null
ctr images import --platform wasi/wasm32 target/test-images/spin-routes.tar >/dev/null

# wasmtime serve goes into a cpu cgroup next to the containers' (<namespace>/<id>), so that
# under CPU contention both servers get the same scheduler weight.
cpu_root=/sys/fs/cgroup/cpu
[[ -d $cpu_root ]] || cpu_root=/sys/fs/cgroup
serve_cgroup="$cpu_root/$CONTAINERD_NAMESPACE/bench-http-wasmtime-serve-$$"
mkdir -p "$serve_cgroup"
# What wasmtime serve needs for the 0.3 component: the component model's async features that
# the shim's engine turns on.
p3_features="component-model-async=y,component-model-more-async-builtins=y"
p3_features+=",component-model-async-stackful=y,component-model-error-context=y"

# Starts both servers of pair $1: ours as a container, wasmtime serve in the namespace.
start_pair() {
	local pair=$1 image component ours_flags=() theirs_flags=() args=()
	local runtime=io.containerd.wasmtime.v1 platform=wasip2/wasm addr_env=WASMTIME_HTTP_PROXY_SOCKET_ADDR
	case $pair in
	p2)
		image=http-hello component=http_hello.wasm
		theirs_flags=(--max-instance-reuse-count 1 -S cli=y)
		;;
	p3)
		image=http-hello-p3 component=http_hello_p3.wasm
		theirs_flags=(-W "$p3_features" --max-instance-reuse-count 1 -S cli=y)
		;;
	p3-reuse)
		image=http-hello-p3 component=http_hello_p3.wasm
		ours_flags=(--annotation io.containerd.wasm.http.max-instance-reuse=128
			--annotation io.containerd.wasm.http.max-instance-concurrent-reuse=16)
		theirs_flags=(-W "$p3_features" --max-instance-reuse-count 128
			--max-instance-concurrent-reuse-count 16 -S cli=y)
		;;
	spin)
		image=spin-routes component=spin_routes_root.wasm
		runtime=io.containerd.spin.v2 platform=wasi/wasm32 addr_env=SPIN_HTTP_LISTEN_ADDR
		# SpinKube's command for a Spin app's container.
		args=(/)
		theirs_flags=(--max-instance-reuse-count 1 -S cli=y)
		;;
	*) say "unknown pair $pair (p2, p3, p3-reuse or spin)"; exit 1 ;;
	esac
	container_id="bench-http-$pair-$$"
	ctr run --rm --net-host --runtime "$runtime" --platform "$platform" \
		"${ours_flags[@]}" --env "$addr_env=127.0.0.1:$ours_port" --env GREETING=bench \
		"docker.io/library/$image:latest" "$container_id" "${args[@]}" >"$raw_dir/ours-$pair.log" 2>&1 &
	ours_pid=$!
	# shellcheck disable=SC2016 # $$ and $1 belong to the inner sh
	nsenter --net="$netns" sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$serve_cgroup" \
		"$wasmtime_cli" serve --addr "127.0.0.1:$theirs_port" "${theirs_flags[@]}" \
		--env GREETING=bench "$components/$component" >"$raw_dir/theirs-$pair.log" 2>&1 &
	theirs_pid=$!
	printf '%s\t%s\n' "$pair" "wasmtime serve ${theirs_flags[*]}; ours ${ours_flags[*]:-(defaults)}" \
		>>"$raw_dir/pairs.txt"
}

wait_for() {
	local port=$1 tries
	for tries in $(seq 300); do
		in_netns curl -sf -o /dev/null "http://127.0.0.1:$port/" && return 0
		sleep 0.1
	done
	say "nothing answers on port $port after $tries tries"
	exit 1
}

# One line per run: pair server connections round requests duration_us errors p50 p90 p99 max.
results="$raw_dir/results.txt"
: >"$results"
run_wrk() {
	local pair=$1 server=$2 port=$3 conns=$4 round=$5 threads out
	threads=$((conns < 2 ? 1 : 2))
	out="$raw_dir/wrk-$pair-$server-$conns-$round.txt"
	in_netns wrk --latency -t "$threads" -c "$conns" -d "${duration}s" -s "$bench_dir/report.lua" \
		"http://127.0.0.1:$port/" >"$out"
	grep '^RESULT' "$out" |
		sed "s/^RESULT/pair=$pair server=$server connections=$conns round=$round/" >>"$results"
}

load_start=$(cut -d' ' -f1 /proc/loadavg)
for pair in "${pairs[@]}"; do
	start_pair "$pair"
	wait_for "$ours_port"
	wait_for "$theirs_port"
	say "$pair: warming up"
	in_netns wrk -t 1 -c 4 -d 2s "http://127.0.0.1:$ours_port/" >/dev/null
	in_netns wrk -t 1 -c 4 -d 2s "http://127.0.0.1:$theirs_port/" >/dev/null
	for round in $(seq "$rounds"); do
		for conns in "${connections[@]}"; do
			say "$pair: round $round/$rounds: $conns connection(s), ${duration}s per server"
			# Alternate who goes first, so that a drift in the machine's load favours neither.
			if ((round % 2)); then
				run_wrk "$pair" ours "$ours_port" "$conns" "$round"
				run_wrk "$pair" wasmtime-serve "$theirs_port" "$conns" "$round"
			else
				run_wrk "$pair" wasmtime-serve "$theirs_port" "$conns" "$round"
				run_wrk "$pair" ours "$ours_port" "$conns" "$round"
			fi
		done
	done
	# SIGTERM: our server drains and logs its instance figures.
	ctr task kill -s SIGTERM "$container_id"
	wait "$ours_pid" || { say "$pair: our server did not exit 0 after SIGTERM"; exit 1; }
	ours_pid=""
	stop_servers
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

"$bench_dir/report.sh" "$raw_dir" "$duration" "$rounds" "$load_start" "$load_end" \
	"$("$wasmtime_cli" --version)" "${BENCH_HTTP_NOTE:-}" >"$bench_dir/report.md"
say "wrote $bench_dir/report.md"
