#!/usr/bin/env bash
# `make bench-http`: our wasmtime shim serving test-images/http-hello against `wasmtime serve`
# (same wasmtime release, same component) in the same run, with wrk at 1, 16 and 64
# connections, in several rounds that alternate which server goes first (the report gives
# medians over the rounds). Writes benches/http/report.md and the raw wrk output in
# target/bench-http/raw/. Not part of `make test`.
#
# Both servers listen on 127.0.0.1 inside the network namespace of a private containerd
# (its own state dir, target/bench-http/containerd): ours through `ctr run --net-host`,
# wasmtime serve and wrk entered with nsenter; wasmtime serve in a cpu cgroup beside the
# container's. Settings (environment):
#   BENCH_HTTP_DURATION   seconds per wrk run (default 10)
#   BENCH_HTTP_ROUNDS     rounds of every (server, connections) run (default 3)
#   BENCH_HTTP_NOTE       a line for the report (e.g. what else ran on the machine)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench_dir="$repo_root/benches/http"
work_dir="$repo_root/target/bench-http"
raw_dir="$work_dir/raw"
duration="${BENCH_HTTP_DURATION:-10}"
rounds="${BENCH_HTTP_ROUNDS:-3}"
connections=(1 16 64)
ours_port=18180
theirs_port=18181
container_id="bench-http-$$"

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
say "building the shim and the test images"
cargo build --release -p containerd-shim-wasmtime
scripts/build-test-images.sh
wasmtime_cli=$("$bench_dir/build-wasmtime-serve.sh")
component="${CARGO_TARGET_DIR:-$repo_root/target}/wasm32-wasip2/release/http_hello.wasm"

export WASM_SHIMS_STATE="$work_dir/containerd"
mkdir -p "$raw_dir"
rm -f "$raw_dir"/*

theirs_pid=""
ours_pid=""
serve_cgroup=""
cleanup() {
	local status=$?
	if [[ -n $theirs_pid ]]; then
		kill "$theirs_pid" 2>/dev/null || true
		wait "$theirs_pid" 2>/dev/null || true
	fi
	if [[ -n $ours_pid ]]; then
		ctr task kill -s SIGKILL "$container_id" >/dev/null 2>&1 || true
		wait "$ours_pid" 2>/dev/null || true
	fi
	ctr container delete "$container_id" >/dev/null 2>&1 || true
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
ctr run --rm --net-host --runtime io.containerd.wasmtime.v1 --platform wasip2/wasm \
	--env "WASMTIME_HTTP_PROXY_SOCKET_ADDR=127.0.0.1:$ours_port" --env GREETING=bench \
	docker.io/library/http-hello:latest "$container_id" >"$raw_dir/ours.log" 2>&1 &
ours_pid=$!
# wasmtime serve goes into a cpu cgroup next to the container's (<namespace>/<id>), so that
# under CPU contention both servers get the same scheduler weight.
cpu_root=/sys/fs/cgroup/cpu
[[ -d $cpu_root ]] || cpu_root=/sys/fs/cgroup
serve_cgroup="$cpu_root/$CONTAINERD_NAMESPACE/bench-http-wasmtime-serve-$$"
mkdir -p "$serve_cgroup"
# shellcheck disable=SC2016 # $$ and $1 belong to the inner sh
nsenter --net="$netns" sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$serve_cgroup" \
	"$wasmtime_cli" serve --addr "127.0.0.1:$theirs_port" --max-instance-reuse-count 1 \
	-S cli=y --env GREETING=bench "$component" >"$raw_dir/theirs.log" 2>&1 &
theirs_pid=$!

wait_for() {
	local port=$1 tries
	for tries in $(seq 300); do
		in_netns curl -sf -o /dev/null "http://127.0.0.1:$port/" && return 0
		sleep 0.1
	done
	say "nothing answers on port $port after $tries tries"
	exit 1
}
wait_for "$ours_port"
wait_for "$theirs_port"

# One line per run: server connections round requests duration_us errors p50 p90 p99 max.
results="$raw_dir/results.txt"
: >"$results"
run_wrk() {
	local server=$1 port=$2 conns=$3 round=$4 threads out
	threads=$((conns < 2 ? 1 : 2))
	out="$raw_dir/wrk-$server-$conns-$round.txt"
	in_netns wrk --latency -t "$threads" -c "$conns" -d "${duration}s" -s "$bench_dir/report.lua" \
		"http://127.0.0.1:$port/" >"$out"
	grep '^RESULT' "$out" | sed "s/^RESULT/server=$server connections=$conns round=$round/" >>"$results"
}

load_start=$(cut -d' ' -f1 /proc/loadavg)
say "warming up"
in_netns wrk -t 1 -c 4 -d 2s "http://127.0.0.1:$ours_port/" >/dev/null
in_netns wrk -t 1 -c 4 -d 2s "http://127.0.0.1:$theirs_port/" >/dev/null
for round in $(seq "$rounds"); do
	for conns in "${connections[@]}"; do
		say "round $round/$rounds: $conns connection(s), ${duration}s per server"
		# Alternate who goes first, so that a drift in the machine's load favours neither.
		if ((round % 2)); then
			run_wrk ours "$ours_port" "$conns" "$round"
			run_wrk wasmtime-serve "$theirs_port" "$conns" "$round"
		else
			run_wrk wasmtime-serve "$theirs_port" "$conns" "$round"
			run_wrk ours "$ours_port" "$conns" "$round"
		fi
	done
done
load_end=$(cut -d' ' -f1 /proc/loadavg)

# SIGTERM: our server drains and logs its instantiation figures.
ctr task kill -s SIGTERM "$container_id"
wait "$ours_pid" || { say "our server did not exit 0 after SIGTERM"; exit 1; }
ours_pid=""
instantiation=$(grep -o 'instantiation mean [0-9.]* us, max [0-9.]* us' "$raw_dir/ours.log" || true)
allocator=$(grep -o '(\(Pooling\|OnDemand\) allocator' "$raw_dir/ours.log" | tr -d '(' || true)

"$bench_dir/report.sh" "$results" "$instantiation" "$allocator" "$duration" "$rounds" \
	"$load_start" "$load_end" "$("$wasmtime_cli" --version)" "${BENCH_HTTP_NOTE:-}" \
	>"$bench_dir/report.md"
say "wrote $bench_dir/report.md"
