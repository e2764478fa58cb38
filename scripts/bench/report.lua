-- The RESULT line every benchmark script prints from wrk's done(): requests, errors, seconds
-- and the latency percentiles seed 004 sets targets for (p50, p95, p99) plus p90.
return function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d errors=%d seconds=%.2f p50_ms=%.2f p90_ms=%.2f p95_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
