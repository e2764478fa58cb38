#!/usr/bin/env bash
# The ingest benchmark: raw COPY (1 and 2 connections) vs bte ingest from the broker, same events.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$BTE_ROOT"
bash scripts/setup.sh
swift build -c release --product bte 2>&1 | grep -E "error|warning:" >&2 || true
BTE_LOG_LEVEL="${BTE_LOG_LEVEL:-warning}" "$(swift build -c release --show-bin-path)/bte" bench "$@"
