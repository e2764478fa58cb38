-- wrk script: a GET, to report the same percentiles as post-events.lua.
-- Run from the repository root (scripts/bench-api.sh does).
done = require("scripts.bench.report")
