#!/usr/bin/env bash
# The HTTP API benchmark (release build, wrk): POST /v1/events with 20 interaction events a
# request at 1, 4 and 16 connections, next to GET /healthz on the same server in the same run
# (the server's floor), and GET /v1/workspaces/{id}/signals (10 signals, 30 days of history stored)
# paced at 250, 500, 1,000 and 2,000 requests/s over 16 connections. Prints throughput and latency
# percentiles. Usage: scripts/bench-api.sh [SECONDS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
SECONDS_EACH="${1:-10}"
command -v wrk >/dev/null 2>&1 || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq wrk >/dev/null; }
bash scripts/setup.sh
swift build -c release --product bte 2>&1 | grep -E "error" >&2 || true
BTE="$(swift build -c release --show-bin-path)/bte"
DB="bte_bench_api_$$"
ADMIN="postgresql://postgres@127.0.0.1:$BTE_PG_PORT"
PREFIX="benchapi$$."
psql -q "$ADMIN/postgres" -c "CREATE DATABASE $DB" >/dev/null
trap 'kill "$SERVER" 2>/dev/null || true; psql -q "$ADMIN/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
"$BTE" migrate --database-url "$ADMIN/$DB" >/dev/null
"$BTE" topics apply --topic-prefix "$PREFIX" >/dev/null
export BTE_BENCH_KEY="$("$BTE" keys create --workspace 11111111-2222-4333-8444-555555555555 --scope write \
  --rate 1000000 --database-url "$ADMIN/$DB" | grep '^bte_')"
WS=11111111-2222-4333-8444-555555555555
export BTE_BENCH_READ_KEY="$("$BTE" keys create --workspace "$WS" --scope read \
  --rate 1000000 --database-url "$ADMIN/$DB" | grep '^bte_')"
# What bte sink would have stored: every signal every 15 minutes over the last 30 days (28,800 rows).
psql -q "$ADMIN/$DB" >/dev/null <<SQL
SELECT bte.ensure_signal_partition(m) FROM generate_series(date_trunc('month', now() - interval '31 days'), now(), interval '1 month') m;
INSERT INTO bte.signal_values (id, workspace_id, signal_type, signal_value, as_of, thresholds_version, record)
SELECT gen_random_uuid(), '$WS', t, random(), a, 1,
       json_build_object('entity_type','workspace','entity_id','$WS','signal_type',t,'signal_value',1.5,'as_of',a,
                         'thresholds_version',1,'computed_from',10,'engine_version','bench')::text
FROM unnest(ARRAY['decision_latency','execution_consistency','idle_decay','momentum','nba_adoption_rate',
                  'follow_through_rate','drop_off_point','hesitation_index','missed_opportunity_count','execution_gap']) t,
     generate_series(now() - interval '30 days', now(), interval '15 minutes') a;
ANALYZE bte.signal_values;
SQL
PORT=18181
BTE_LOG_LEVEL=warning "$BTE" serve --port "$PORT" --topic-prefix "$PREFIX" \
  --reader-database-url "postgresql://bte_reader@127.0.0.1:$BTE_PG_PORT/$DB" &
SERVER=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done

run() { # label connections script path
  local line
  line="$(wrk -t "$(( $2 < 2 ? 1 : 2 ))" -c "$2" -d "${SECONDS_EACH}s" -s "$3" "http://127.0.0.1:$PORT$4" | grep '^RESULT')"
  echo "$1 $line"
}
echo "API benchmark: ${SECONDS_EACH}s each, $(nproc) cores, broker and PostgreSQL on the same machine"
run "GET /healthz          c=16" 16 scripts/bench/get.lua /healthz
for c in 1 4 16; do
  run "POST /v1/events (20)  c=$c" "$c" scripts/bench/post-events.lua /v1/events
done | awk '{print} /RESULT/ {for (i=1;i<=NF;i++) if ($i ~ /^requests=/) {split($i,a,"="); r=a[2]} else if ($i ~ /^seconds=/) {split($i,b,"="); s=b[2]}; printf "    → %.0f requests/s, %.0f events/s\n", r/s, 20*r/s}'
for rate in 250 500 1000 2000; do
  line="$(RATE=$rate CONNECTIONS=16 wrk -t 2 -c 16 -d "${SECONDS_EACH}s" -s scripts/bench/get-paced.lua \
    "http://127.0.0.1:$PORT/v1/workspaces/$WS/signals" | grep '^RESULT')"
  echo "GET signals paced $rate/s c=16 $line"
done | awk '{print} /RESULT/ {for (i=1;i<=NF;i++) if ($i ~ /^requests=/) {split($i,a,"="); r=a[2]} else if ($i ~ /^seconds=/) {split($i,b,"="); s=b[2]}; printf "    → %.0f requests/s\n", r/s}'
run "GET signals, unpaced  c=16" 16 scripts/bench/get-paced.lua "/v1/workspaces/$WS/signals"
