# Sourced by the other scripts: one place for local ports, paths and URLs.
# Every value can be overridden from the environment.
BTE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BTE_ROOT
export BTE_DEV_DIR="${BTE_DEV_DIR:-$BTE_ROOT/.dev}"
export BTE_PG_PORT="${BTE_PG_PORT:-55432}"
export BTE_KAFKA_PORT="${BTE_KAFKA_PORT:-59092}"
export BTE_DB_NAME="${BTE_DB_NAME:-bte}"
export BTE_KAFKA_BROKERS="${BTE_KAFKA_BROKERS:-127.0.0.1:$BTE_KAFKA_PORT}"
export BTE_ADMIN_DATABASE_URL="${BTE_ADMIN_DATABASE_URL:-postgresql://postgres@127.0.0.1:$BTE_PG_PORT/$BTE_DB_NAME}"
export BTE_DATABASE_URL="${BTE_DATABASE_URL:-postgresql://bte_ingest@127.0.0.1:$BTE_PG_PORT/$BTE_DB_NAME}"
export BTE_READER_DATABASE_URL="${BTE_READER_DATABASE_URL:-postgresql://bte_reader@127.0.0.1:$BTE_PG_PORT/$BTE_DB_NAME}"
export BTE_KAFKA_SESSION_TIMEOUT_MS="${BTE_KAFKA_SESSION_TIMEOUT_MS:-6000}"
# librdkafka >= 2.1 is needed at run time to talk to the local broker (see docs/operations.md).
export LD_LIBRARY_PATH="$BTE_DEV_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PG_BIN=/usr/lib/postgresql/15/bin
