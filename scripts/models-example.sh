#!/usr/bin/env bash
# The worked example of docs/models.md: generates the demo workspace's 120 days (fixed seed and
# end, so the same bytes every time), ingests them, fits both models, forecasts and plans. It
# prints each command and its output; the docs quote that output verbatim and a test checks
# they agree. Run ids (random) print as RUN.
#
# Needs the local servers (scripts/setup.sh), a migrated database and the topics
# (scripts/run.sh does all three). BTE (the binary; default the release build),
# BTE_DATABASE_URL, BTE_KAFKA_BROKERS and BTE_TOPIC_PREFIX are read from the environment.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BTE="${BTE:-$(cd "$BTE_ROOT" && swift build -c release --show-bin-path)/bte}"
[ -x "$BTE" ] || { echo "models-example: no bte binary at $BTE (swift build -c release)" >&2; exit 1; }
# OpenBLAS picks its kernels by CPU, and kernels sum in different orders: pinned to one that
# every x86_64 server has, on one thread, the figures are the same bytes on any such machine.
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Nehalem}" OPENBLAS_NUM_THREADS=1
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

W=5e0c1d2a-3b4c-4d5e-8f60-718293a4b5c6
RUN=""
# Run ids are random: the state-space fit's prints as RUN, every other one as ID.
mask() {
  local text="$1"
  [ -n "$RUN" ] && text="${text//$RUN/RUN}"
  sed -E 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/ID/g' <<<"$text"
}
# Shows a command as typed (with $W and RUN) and its output.
show() {
  local shown="$*"
  shown="${shown//$W/\$W}"
  echo "\$ bte $(mask "$shown")"
  mask "$("$BTE" "$@")"
  echo
}

"$BTE" generate --events 100 --model-days 120 --seed 1 --end 2026-12-01T00:00:00Z >/dev/null
BTE_LOG_LEVEL=warning "$BTE" ingest --until-idle >/dev/null
show models fit --workspace "$W" --model rc_retention --since 120 --until 2026-11-30
FIT="$("$BTE" models fit --workspace "$W" --model state_space --since 120 --until 2026-11-30)"
RUN="$(head -1 <<<"$FIT" | awk '{print $3}')"
echo "\$ bte models fit --workspace \$W --model state_space --since 120 --until 2026-11-30"
mask "$FIT"
echo
show models forecast --run "$RUN" --horizon 3
cat > constraints.json <<'JSON'
{"targets": {"daily_active_users": 900, "latency_p95_ms": 200}, "latency_max": 250,
 "weekly_budget": 3000, "budget_coefficients": {"promo_voltage": 2000}}
JSON
echo "\$ cat constraints.json"
cat constraints.json
echo
show models recommend --run "$RUN" --horizon 14 --constraints constraints.json
