#!/usr/bin/env bash
# The models API benchmark (release build, wrk, one connection): a workspace's 365 days of product
# activity through Kafka and ingest, then POST /v1/estimate (fresh fits, and one replayed by its
# Idempotency-Key), /v1/simulate at H=7 and H=28, /v1/forecast and /v1/recommend against the
# seed's latency table, next to GET /healthz on the same server (its floor). Every request must
# answer 200 (a slow job would answer 202: the wait is raised so none does).
# Usage: scripts/bench-models-api.sh [SECONDS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
SECONDS_EACH="${1:-10}"
command -v wrk >/dev/null 2>&1 || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo; $SUDO apt-get install -y -qq wrk >/dev/null; }
bash scripts/setup.sh
swift build -c release --product bte 2>&1 | grep -E "error" >&2 || true
BTE="$(swift build -c release --show-bin-path)/bte"
DB="bte_bench_models_$$"
ADMIN="postgresql://postgres@127.0.0.1:$BTE_PG_PORT"
PREFIX="benchmodels$$."
psql -q "$ADMIN/postgres" -c "CREATE DATABASE $DB" >/dev/null
trap 'kill "$SERVER" 2>/dev/null || true; psql -q "$ADMIN/postgres" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null' EXIT
SERVER=""
"$BTE" migrate --database-url "$ADMIN/$DB" >/dev/null
"$BTE" topics apply --topic-prefix "$PREFIX" >/dev/null
WS=5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6 # the workspace of bte generate --model-days
INGEST="postgresql://bte_ingest@127.0.0.1:$BTE_PG_PORT/$DB"
"$BTE" generate --events 0 --bad-rounds 0 --model-days 365 --topic-prefix "$PREFIX" >/dev/null
BTE_LOG_LEVEL=error "$BTE" ingest --until-idle --topic-prefix "$PREFIX" --database-url "$INGEST" >/dev/null
export BTE_BENCH_READ_KEY="$("$BTE" keys create --workspace "$WS" --scope read \
  --rate 1000000 --database-url "$ADMIN/$DB" | grep '^bte_')"
PORT=18182
BTE_LOG_LEVEL=warning "$BTE" serve --port "$PORT" --topic-prefix "$PREFIX" --job-wait-ms 60000 \
  --reader-database-url "postgresql://bte_reader@127.0.0.1:$BTE_PG_PORT/$DB" --database-url "$INGEST" &
SERVER=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
RUN="$(curl -fsS -H "Authorization: Bearer $BTE_BENCH_READ_KEY" -d '{"model":"state_space","since":365}' \
  "http://127.0.0.1:$PORT/v1/estimate" | sed -E 's/.*"run_id":"([0-9a-f-]+)".*/\1/')"

run() { # label path body [idempotency key]
  local line
  line="$(BTE_BENCH_BODY="$3" BTE_BENCH_IDEMPOTENCY="${4:-}" wrk -t 1 -c 1 -d "${SECONDS_EACH}s" --timeout 60s \
    -s scripts/bench/post-json.lua "http://127.0.0.1:$PORT$2" | grep '^RESULT')"
  echo "$1 $line"
}
# The cached row replays this key's reply: computed once here, before the clock starts.
curl -fsS -o /dev/null -H "Authorization: Bearer $BTE_BENCH_READ_KEY" -H "Idempotency-Key: bench-cached" \
  -d '{"model":"state_space","since":365}' "http://127.0.0.1:$PORT/v1/estimate"
echo "Models API benchmark: ${SECONDS_EACH}s each, 1 connection, $(nproc) cores, run $RUN (365 days)"
echo "GET /healthz (floor) $(wrk -t 1 -c 1 -d "${SECONDS_EACH}s" -s scripts/bench/get.lua "http://127.0.0.1:$PORT/healthz" | grep '^RESULT')"
run "POST /v1/estimate (cached)" /v1/estimate '{"model":"state_space","since":365}' bench-cached
run "POST /v1/simulate (H=7)" /v1/simulate "{\"run_id\":\"$RUN\",\"horizon\":7,\"controls\":{\"rollout_pct\":1.0}}"
run "POST /v1/simulate (H=28)" /v1/simulate "{\"run_id\":\"$RUN\",\"horizon\":28,\"controls\":{\"rollout_pct\":1.0}}"
run "POST /v1/forecast (H=28)" /v1/forecast "{\"run_id\":\"$RUN\",\"horizon\":28}"
run "POST /v1/recommend (H=14)" /v1/recommend \
  "{\"run_id\":\"$RUN\",\"horizon\":14,\"constraints\":{\"targets\":{\"daily_active_users\":1000},\"weekly_budget\":3000,\"budget_coefficients\":{\"promo_voltage\":2000}}}"
# Fresh fits last: a fit still running when its row ends would slow the next row.
run "POST /v1/estimate (fresh, 365 d)" /v1/estimate '{"model":"state_space","since":365}'
