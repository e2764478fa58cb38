#!/usr/bin/env bash
# The run command: set up local servers, build, migrate, create topics, feed a generated
# stream (with bad input) and ingest it until idle, then print what happened.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
bash scripts/setup.sh
echo "== build (release)" >&2
swift build -c release --product bte 2>&1 | grep -E "error|warning:|Compiling bte|Build complete" >&2 || true
BTE="$(swift build -c release --show-bin-path)/bte"
[ -x "$BTE" ] || { echo "run: build failed" >&2; exit 1; }
echo "== migrate" >&2
"$BTE" migrate --database-url "$BTE_ADMIN_DATABASE_URL"
echo "== topics" >&2
"$BTE" topics apply
echo "== generate" >&2
"$BTE" generate --events "${BTE_DEMO_EVENTS:-20000}" --seed "${BTE_DEMO_SEED:-$(date +%s)}"
echo "== ingest --until-idle" >&2
BTE_LOG_LEVEL="${BTE_LOG_LEVEL:-warning}" "$BTE" ingest --until-idle --summary
echo "== project --until-idle" >&2
BTE_LOG_LEVEL="${BTE_LOG_LEVEL:-warning}" "$BTE" project --until-idle
echo "== sweep" >&2
BTE_LOG_LEVEL="${BTE_LOG_LEVEL:-warning}" "$BTE" sweep --as-of "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --show 2
echo "== intents report --since 7d" >&2
"$BTE" intents report --since 7d --top 5
echo "== sink --until-idle" >&2
BTE_LOG_LEVEL="${BTE_LOG_LEVEL:-warning}" "$BTE" sink --until-idle --summary
echo "== serve: a read key and the newest workspace's signals over HTTP" >&2
WS="$(psql -Atq "$BTE_READER_DATABASE_URL" -c "SELECT workspace_id FROM bte.signal_values ORDER BY stored_at DESC LIMIT 1")"
if [ -n "$WS" ]; then
  KEY="$("$BTE" keys create --workspace "$WS" --scope read --database-url "$BTE_ADMIN_DATABASE_URL" | grep '^bte_')"
  PORT="${BTE_DEMO_HTTP_PORT:-18080}"
  BTE_LOG_LEVEL=warning "$BTE" serve --port "$PORT" &
  SERVER=$!
  trap 'kill "$SERVER" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  BODY="$(curl -sS -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/v1/workspaces/$WS/signals")"
  echo "GET /v1/workspaces/$WS/signals: $(grep -o '"signal_type"' <<<"$BODY" | wc -l) signals"
  grep -o '"signal_type":"[a-z_]*","signal_value":[-0-9.e]*' <<<"$BODY" | sed 's/"signal_type":"\([a-z_]*\)","signal_value":/  \1 = /' | head -4
  kill "$SERVER" 2>/dev/null || true
fi
