#!/usr/bin/env bash
# Stops the local servers started by setup.sh.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ -f "$BTE_DEV_DIR/tansu.pid" ] && { kill -CONT "$(cat "$BTE_DEV_DIR/tansu.pid")" 2>/dev/null; kill "$(cat "$BTE_DEV_DIR/tansu.pid")" 2>/dev/null; rm -f "$BTE_DEV_DIR/tansu.pid"; }
[ -f "$BTE_DEV_DIR/pgdir" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$(cat "$BTE_DEV_DIR/pgdir")" -m fast stop >/dev/null 2>&1
echo "stopped"
