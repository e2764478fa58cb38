-- wrk script: a GET with the read key, each of CONNECTIONS connections waiting CONNECTIONS/RATE
-- seconds between requests (wrk's delay()), so the load is about RATE requests a second rather
-- than as fast as the server answers. The wait comes after each answer, so the rate reached is a
-- little lower than RATE; the benchmark prints the rate reached.
local connections = tonumber(os.getenv("CONNECTIONS") or "1")
local rate = tonumber(os.getenv("RATE") or "0")
local key = os.getenv("BTE_BENCH_READ_KEY") or ""
request = function()
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. key})
end
delay = function()
  if rate > 0 then return 1000 * connections / rate end
  return 0
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d seconds=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000))
end
