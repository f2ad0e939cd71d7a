-- wrk reporting hook: one machine-readable line after the run.
-- Latencies are in microseconds, as wrk measures them.
done = function(summary, latency, requests)
	local errors = summary.errors.connect + summary.errors.read + summary.errors.write
		+ summary.errors.status + summary.errors.timeout
	io.write(string.format(
		"RESULT requests=%d duration_us=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
		summary.requests, summary.duration, errors,
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
