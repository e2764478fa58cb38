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
-- Run from the repository root (scripts/bench-api.sh does).
done = require("scripts.bench.report")
