#!/usr/bin/env bash
# Prints benches/http/report.md from one run of bench.sh (see there for the arguments), then
# appends benches/http/analysis.md: the explanation of missed targets, written by hand after
# looking at a run, which says which run it was written for.
set -euo pipefail

results=$1 instantiation=$2 allocator=$3 duration=$4 load_start=$5 load_end=$6
wasmtime_version=$7 note=$8
bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# field NAME LINE: the value of NAME=... in a results line.
field() { grep -o "\b$1=[^ ]*" <<<"$2" | cut -d= -f2; }
line_of() { grep "^server=$1 connections=$2 " "$results"; }
rps() {
	local line
	line=$(line_of "$1" "$2")
	awk -v r="$(field requests "$line")" -v d="$(field duration_us "$line")" 'BEGIN { printf "%.0f", r / (d / 1e6) }'
}
ms() { awk -v us="$(field "$1" "$(line_of "$2" "$3")")" 'BEGIN { printf "%.2f", us / 1000 }'; }
verdict() { if (($1)); then echo "**met**"; else echo "**missed**"; fi; }

cat <<HEADER
# HTTP benchmark: the wasmtime shim serving a wasi:http component vs \`wasmtime serve\`

Written by \`make bench-http\` (\`benches/http/bench.sh\`) on $(date -u +%Y-%m-%dT%H:%M:%SZ).
**Every number comes from this one run**: both servers serve the same component
(\`test-images/http-hello\`, answering \`GET /\` with a small text body built from the
request, an env value and a global counter), on 127.0.0.1 in the same network namespace, one
after the other for each connection count, with \`wrk\` (Debian's package) for ${duration} s
per run, after a 2 s warm-up of each.

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
		line=$(line_of "$server" "$conns")
		printf '| %s | %s | %s | %s ms | %s ms | %s ms | %s ms | %s |\n' "$conns" "$server" \
			"$(rps "$server" "$conns")" "$(ms p50_us "$server" "$conns")" "$(ms p90_us "$server" "$conns")" \
			"$(ms p99_us "$server" "$conns")" "$(ms max_us "$server" "$conns")" "$(field errors "$line")"
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
	printf '| requests/s at %s connection(s) at least wasmtime serve'"'"'s | %s vs %s (%s%%) | %s |\n' \
		"$conns" "$ours" "$theirs" "$((100 * ours / theirs))" "$(verdict "$ours >= $theirs")"
done
p99_us=$(field p99_us "$(line_of ours 16)")
printf '| p99 under 2 ms at 16 connections | %s ms | %s |\n' "$(ms p99_us ours 16)" "$(verdict "$p99_us < 2000")"
mean_us=$(grep -o 'mean [0-9.]*' <<<"$instantiation" | cut -d' ' -f2)
mean_int=${mean_us%.*}
printf '| instantiation under 100 us (mean) | %s us | %s |\n' "${mean_us:-?}" "$(verdict "${mean_int:-100} < 100")"

printf '\nRaw wrk output: target/bench-http/raw/.\n\n'
cat "$bench_dir/analysis.md"
