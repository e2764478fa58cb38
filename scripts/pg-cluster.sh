#!/usr/bin/env bash
# Scratch PostgreSQL clusters beside the local one: for restore drills, failover tests and for
# trying a runbook by hand. Servers run as the postgres user (data directories must be reachable
# by it: use /var/tmp, not a home directory).
#
#   scripts/pg-cluster.sh init DIR                  a new cluster (trust auth, superuser postgres)
#   scripts/pg-cluster.sh start DIR PORT [-c k=v…]  start it on 127.0.0.1:PORT, wait until it accepts
#   scripts/pg-cluster.sh ready PORT [SECONDS]      wait until it accepts writes (out of recovery)
#   scripts/pg-cluster.sh stop DIR [fast|immediate] stop it
#   scripts/pg-cluster.sh standby DIR PORT PRIMARY_PORT
#                                                   a streaming standby of the cluster on PRIMARY_PORT
#   scripts/pg-cluster.sh promote DIR               promote a standby to primary
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
fail() { echo "pg-cluster: $*" >&2; exit 1; }
own() {
  mkdir -p "$1"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$1"; fi
  chmod 700 "$1"
}
psql_at() { psql -X -q -v ON_ERROR_STOP=1 -tA "postgresql://postgres@127.0.0.1:$1/postgres" "${@:2}"; }

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  init)
    [ $# -eq 1 ] || fail "usage: init DIR"
    [ -f "$1/PG_VERSION" ] && fail "$1 already holds a cluster"
    own "$1"
    as_pg "$PG_BIN/initdb" -D "$1" -A trust -U postgres >/dev/null
    ;;
  start)
    [ $# -ge 2 ] || fail "usage: start DIR PORT [-c name=value ...]"
    dir="$1" port="$2"; shift 2
    [ -f "$dir/PG_VERSION" ] || fail "$dir holds no cluster"
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -w -t 300 -l "$dir/log" \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 $*" start >/dev/null \
      || fail "PostgreSQL in $dir did not start (see $dir/log)"
    ;;
  ready)
    [ $# -ge 1 ] || fail "usage: ready PORT [SECONDS]"
    deadline=$(( $(date +%s) + ${2:-300} ))
    until [ "$(psql_at "$1" -c 'SELECT NOT pg_is_in_recovery()' 2>/dev/null)" = "t" ]; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "127.0.0.1:$1 is not accepting writes after ${2:-300} s"
      sleep 0.2
    done
    ;;
  stop)
    [ $# -ge 1 ] || fail "usage: stop DIR [fast|immediate]"
    as_pg "$PG_BIN/pg_ctl" -D "$1" -m "${2:-fast}" -w stop >/dev/null
    ;;
  standby)
    [ $# -eq 3 ] || fail "usage: standby DIR PORT PRIMARY_PORT"
    [ -e "$1/PG_VERSION" ] && fail "$1 already holds a cluster"
    own "$1"
    # -R writes primary_conninfo and standby.signal: the copy follows the primary from its first start.
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$3" -U postgres -D "$1" -R -X stream -c fast >/dev/null
    ;;
  promote)
    [ $# -eq 1 ] || fail "usage: promote DIR"
    as_pg "$PG_BIN/pg_ctl" -D "$1" -w promote >/dev/null
    ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || exit 2
    ;;
esac
