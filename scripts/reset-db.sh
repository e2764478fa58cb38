#!/usr/bin/env bash
# Drops and recreates the local database (the broker keeps its topics).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$BTE_PG_PORT/postgres" \
  -c "DROP DATABASE IF EXISTS $BTE_DB_NAME WITH (FORCE)" -c "CREATE DATABASE $BTE_DB_NAME"
