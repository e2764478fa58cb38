-- wrk script: POST /v1/events with 20 interaction events a request, each with a fresh event_id.
-- The key comes from the environment (BTE_BENCH_KEY).
local key = os.getenv("BTE_BENCH_KEY")
local counter = 0
local thread_id = 0

setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

init = function(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

request = function()
  local records = {}
  for i = 1, 20 do
    counter = counter + 1
    records[i] = string.format(
      '{"record_type":"interaction_event","event_id":"%s-0000-4000-8000-%012x","timestamp":"2026-03-01T10:00:00Z",' ..
      '"event_type":"tap","user_id":"user-%d","session_id":"s-%d","capsule_type":"task","duration_ms":120}',
      prefix, counter, counter % 500, counter % 50)
  end
  local body = '{"events":[' .. table.concat(records, ",") .. ']}'
  return wrk.format("POST", "/v1/events",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end

-- Run from the repository root (scripts/bench-api.sh does).
done = require("scripts.bench.report")
