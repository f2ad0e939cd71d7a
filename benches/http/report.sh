#!/usr/bin/env bash
# Prints benches/http/report.md from one run of bench.sh (see there for the arguments), then
# appends benches/http/analysis.md: the explanation of missed targets, written by hand after
# looking at a run, which says which run it was written for.
set -euo pipefail

results=$1 instantiation=$2 allocator=$3 duration=$4 rounds=$5 load_start=$6 load_end=$7
wasmtime_version=$8 note=$9
bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The values of field NAME in the runs of SERVER at CONNECTIONS, one per line.
values() { grep "^server=$2 connections=$3 " "$results" | grep -o "\b$1=[^ ]*" | cut -d= -f2; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rps() {
	paste <(values requests "$1" "$2") <(values duration_us "$1" "$2") |
		awk '{ printf "%.0f\n", $1 / ($2 / 1e6) }' | median
}
# Median of a latency field, in ms.
ms() { awk -v us="$(values "$1" "$2" "$3" | median)" 'BEGIN { printf "%.2f", us / 1000 }'; }
max_ms() { awk -v us="$(values max_us "$1" "$2" | sort -n | tail -1)" 'BEGIN { printf "%.2f", us / 1000 }'; }
errors() { values errors "$1" "$2" | awk '{ n += $1 } END { print n + 0 }'; }
verdict() { if (($1)); then echo "**met**"; else echo "**missed**"; fi; }

cat <<HEADER
# HTTP benchmark: the wasmtime shim serving a wasi:http component vs \`wasmtime serve\`

Written by \`make bench-http\` (\`benches/http/bench.sh\`) on $(date -u +%Y-%m-%dT%H:%M:%SZ).
**Every number comes from this one run**: both servers serve the same component
(\`test-images/http-hello\`, answering \`GET /\` with a small text body built from the
request, an env value and a global counter), on 127.0.0.1 in the same network namespace, one
after the other for each connection count, with \`wrk\` (Debian's package) for ${duration} s
per run, after a 2 s warm-up of each. ${rounds} rounds, alternating which server goes first;
every figure below is the **median over the rounds** (max: the largest; errors: the sum).

| machine | |
|---|---|
| cores | $(nproc) |
| kernel | $(uname -r) |
| ours | containerd-shim-wasmtime-v1 (commit $(git -C "$bench_dir" rev-parse --short HEAD)), ${allocator:-allocator not logged}, \`ctr run --net-host\` |
| reference | \`$wasmtime_version serve --max-instance-reuse-count 1 -S cli=y\` (its default for WASI 0.2 components: a fresh instance per request; built by benches/http/build-wasmtime-serve.sh), in a cpu cgroup beside the container's so that both get the same CPU weight |
| 1-minute load average | $load_start at the start, $load_end at the end |
HEADER
if [[ -n $note ]]; then
	printf '\nNote on this run: %s\n' "$note"
fi

cat <<'TABLE'

## Results

| connections | server | requests/s | p50 | p90 | p99 | max | errors |
|---|---|---|---|---|---|---|---|
TABLE
for conns in 1 16 64; do
	for server in ours wasmtime-serve; do
		printf '| %s | %s | %s | %s ms | %s ms | %s ms | %s ms | %s |\n' "$conns" "$server" \
			"$(rps "$server" "$conns")" "$(ms p50_us "$server" "$conns")" "$(ms p90_us "$server" "$conns")" \
			"$(ms p99_us "$server" "$conns")" "$(max_ms "$server" "$conns")" "$(errors "$server" "$conns")"
	done
done

printf '\nPer-request instantiation in our server (every request of the run, warm-up included): %s.\n' \
	"${instantiation:-not logged}"

cat <<'TARGETS'

## Targets

| target | measured | verdict |
|---|---|---|
TARGETS
for conns in 1 16 64; do
	ours=$(rps ours "$conns")
	theirs=$(rps wasmtime-serve "$conns")
	printf '| requests/s at %s connection(s) at least wasmtime serve'"'"'s (medians) | %s vs %s (%s%%) | %s |\n' \
		"$conns" "$ours" "$theirs" "$((100 * ours / theirs))" "$(verdict "$ours >= $theirs")"
done
p99_us=$(values p99_us ours 16 | median)
printf '| p99 under 2 ms at 16 connections (median over the rounds) | %s ms | %s |\n' "$(ms p99_us ours 16)" "$(verdict "$p99_us < 2000")"
mean_us=$(grep -o 'mean [0-9.]*' <<<"$instantiation" | cut -d' ' -f2)
mean_int=${mean_us%.*}
printf '| instantiation under 100 us (mean) | %s us | %s |\n' "${mean_us:-?}" "$(verdict "${mean_int:-100} < 100")"

printf '\nRaw wrk output: target/bench-http/raw/.\n\n'
cat "$bench_dir/analysis.md"
