-- wrk script: POST one JSON body (BTE_BENCH_BODY) with a read key (BTE_BENCH_READ_KEY); with
-- BTE_BENCH_IDEMPOTENCY set, every request carries that Idempotency-Key (the replayed reply).
local key = os.getenv("BTE_BENCH_READ_KEY")
local body = os.getenv("BTE_BENCH_BODY")
local idempotency = os.getenv("BTE_BENCH_IDEMPOTENCY")


request = function()
  local headers = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
  if idempotency and idempotency ~= "" then headers["Idempotency-Key"] = idempotency end
  return wrk.format("POST", nil, headers, body)
end

done = require("scripts.bench.report")
