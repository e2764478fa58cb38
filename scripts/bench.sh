#!/usr/bin/env bash
# The benchmarks (release build): ingest vs raw COPY by default; --suite project|memory|intents|models.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
bash scripts/setup.sh
swift build -c release --product bte 2>&1 | grep -E "error|warning:" >&2 || true
swift build -c release --product bte-bench 2>&1 | grep -E "error|warning:" >&2 || true
BTE_LOG_LEVEL="${BTE_LOG_LEVEL:-warning}" "$(swift build -c release --show-bin-path)/bte-bench" "$@"
