#!/usr/bin/env bash
# Prints benches/http/report.md from one run of bench.sh (see there for the arguments and the
# pairs), then appends benches/http/analysis.md: the explanation of the figures and of missed
# targets, written by hand after looking at a run, which says which run it was written for.
set -euo pipefail

raw_dir=$1 duration=$2 rounds=$3 load_start=$4 load_end=$5 wasmtime_version=$6 note=$7
bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="$raw_dir/results.txt"
mapfile -t pairs < <(cut -f1 "$raw_dir/pairs.txt")

# The values of field NAME in the runs of PAIR's SERVER at CONNECTIONS, one per line.
values() { grep "^pair=$2 server=$3 connections=$4 " "$results" | grep -o "\b$1=[^ ]*" | cut -d= -f2; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rps() {
	paste <(values requests "$@") <(values duration_us "$@") |
		awk '{ printf "%.0f\n", $1 / ($2 / 1e6) }' | median
}
# Median of a latency field, in ms.
ms() { awk -v us="$(values "$@" | median)" 'BEGIN { printf "%.2f", us / 1000 }'; }
max_ms() { awk -v us="$(values max_us "$@" | sort -n | tail -1)" 'BEGIN { printf "%.2f", us / 1000 }'; }
errors() { values errors "$@" | awk '{ n += $1 } END { print n + 0 }'; }
verdict() { if (($1)); then echo "**met**"; else echo "**missed**"; fi; }
# What our server logged when it stopped: "instances N, instantiation mean X us, max Y us"
# (for a Spin app, its components' lines together).
instances() {
	grep -o 'instances [0-9]*, instantiation mean [0-9.]* us, max [0-9.]* us' "$raw_dir/ours-$1.log" |
		paste -sd ';' || true
}
allocator=$(grep -ho '(\(Pooling\|OnDemand\) allocator' "$raw_dir"/ours-*.log | head -1 | tr -d '(' || true)

cat <<HEADER
# HTTP benchmark: the wasmtime shim serving wasi:http components vs \`wasmtime serve\`

Written by \`make bench-http\` (\`benches/http/bench.sh\`) on $(date -u +%Y-%m-%dT%H:%M:%SZ).
**Every number comes from this one run**: for each pair, both servers serve the same component
on 127.0.0.1 in the same network namespace, one after the other for each connection count, with
\`wrk\` (Debian's package) for ${duration} s per run, after a 2 s warm-up of each. ${rounds}
rounds, alternating which server goes first; every figure below is the **median over the
rounds** (max: the largest; errors: the sum). The components answer \`GET /\` with a small text
body built from the request, an env value and a counter kept in the instance.

| pair | component | instances |
|---|---|---|
| p2 | \`test-images/http-hello\` (\`wasi:http/proxy@0.2\`) | a fresh instance per request in both |
| p3 | \`test-images/http-hello-p3\` (\`wasi:http/service@0.3\`) | a fresh instance per request in both (our default) |
| p3-reuse | the same 0.3 component | up to 128 requests per instance, 16 at once, in both (\`wasmtime serve\`'s default for 0.3) |
| spin | ours: the Spin app \`test-images/spin-routes\` on \`containerd-shim-spin-v2\`, \`GET /\` routed to its root component (spin-sdk 5) with Spin's \`spin-*\` headers; reference: that component alone | a fresh instance per request in both |

| machine | |
|---|---|
| cores | $(nproc) |
| kernel | $(uname -r) |
| ours | containerd-shim-wasmtime-v1 (commit $(git -C "$bench_dir" rev-parse --short HEAD)), ${allocator:-allocator not logged}, \`ctr run --net-host\` |
| reference | \`$wasmtime_version serve\` (built by benches/http/build-wasmtime-serve.sh), in a cpu cgroup beside the container's so that both get the same CPU weight |
| 1-minute load average | $load_start at the start, $load_end at the end |

Flags of each pair:

| pair | settings |
|---|---|
HEADER
while IFS=$'\t' read -r pair settings; do
	# shellcheck disable=SC2016 # the backquotes are Markdown
	printf '| %s | `%s` |\n' "$pair" "$settings"
done <"$raw_dir/pairs.txt"
if [[ -n $note ]]; then
	printf '\nNote on this run: %s\n' "$note"
fi

cat <<'TABLE'

## Results

| pair | connections | server | requests/s | p50 | p90 | p99 | max | errors |
|---|---|---|---|---|---|---|---|---|
TABLE
for pair in "${pairs[@]}"; do
	for conns in 1 16 64; do
		for server in ours wasmtime-serve; do
			printf '| %s | %s | %s | %s | %s ms | %s ms | %s ms | %s ms | %s |\n' "$pair" "$conns" "$server" \
				"$(rps "$pair" "$server" "$conns")" "$(ms p50_us "$pair" "$server" "$conns")" \
				"$(ms p90_us "$pair" "$server" "$conns")" "$(ms p99_us "$pair" "$server" "$conns")" \
				"$(max_ms "$pair" "$server" "$conns")" "$(errors "$pair" "$server" "$conns")"
		done
	done
done

printf '\nInstances our server made and their instantiation (every request of the pair, warm-up included):\n\n'
for pair in "${pairs[@]}"; do
	printf -- '- %s: %s\n' "$pair" "$(instances "$pair" | sed 's/^$/not logged/')"
done

cat <<'TARGETS'

## Targets

| target | measured | verdict |
|---|---|---|
TARGETS
for pair in "${pairs[@]}"; do
	for conns in 1 16 64; do
		ours=$(rps "$pair" ours "$conns")
		theirs=$(rps "$pair" wasmtime-serve "$conns")
		printf '| %s: requests/s at %s connection(s) at least wasmtime serve'"'"'s (medians) | %s vs %s (%s%%) | %s |\n' \
			"$pair" "$conns" "$ours" "$theirs" "$((100 * ours / theirs))" "$(verdict "$ours >= $theirs")"
	done
	p99_us=$(values p99_us "$pair" ours 16 | median)
	printf '| %s: p99 under 2 ms at 16 connections (median over the rounds) | %s ms | %s |\n' \
		"$pair" "$(ms p99_us "$pair" ours 16)" "$(verdict "$p99_us < 2000")"
	# Per-request instantiation is the target of the fresh-instance servers of one component.
	if [[ $pair == p2 || $pair == p3 ]]; then
		mean_us=$(instances "$pair" | grep -o 'mean [0-9.]*' | cut -d' ' -f2)
		mean_int=${mean_us%.*}
		printf '| %s: instantiation under 100 us (mean) | %s us | %s |\n' \
			"$pair" "${mean_us:-?}" "$(verdict "${mean_int:-100} < 100")"
	fi
done

printf '\nRaw wrk output: target/bench-http/raw/.\n\n'
cat "$bench_dir/analysis.md"
