#!/usr/bin/env bash
# Restore figures for a BTE cluster backed up with pgBackRest: how much a lost primary loses (RPO)
# and how long a restore takes (RTO), with EVENTS stored. Runs on scratch clusters under /var/tmp
# and the local broker (scripts/setup.sh), prints the figures, removes what it made.
#
#   scripts/bench-restore.sh [EVENTS]      (default 1000000; BTE_BIN picks the bte binary)
#
# 1. EVENTS generated events are ingested, then a full backup is taken.
# 2. Ingest keeps storing a second stream; the primary is killed (stop -m immediate) mid-stream,
#    its disk taken as lost: the WAL archive is what is left.
# 3. RPO: the restore of the latest archived state against what the primary had committed
#    (read after letting the killed primary recover), in rows and seconds.
# 4. RTO: restore, recovery to a server that accepts writes, and ingest completing the logs from
#    Kafka from the restored offsets.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
EVENTS="${1:-1000000}"
BTE="${BTE_BIN:-$BTE_ROOT/.build/debug/bte}"
[ -x "$BTE" ] || { echo "bench-restore: no bte at $BTE (swift build, or set BTE_BIN)" >&2; exit 1; }
root="/var/tmp/bte-restore-bench-$$"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(port); P2=$(port)
prefix="rb$$."
export BTE_BACKUP_DIR="$root/backup" BTE_BACKUP_PGDATA="$root/primary" BTE_BACKUP_PGPORT="$P1"
cleanup() {
  [ -n "${ingest_pid:-}" ] && kill "$ingest_pid" 2>/dev/null
  for d in primary restored; do
    [ -f "$root/$d/postmaster.pid" ] && bash "$BTE_ROOT/scripts/pg-cluster.sh" stop "$root/$d" immediate 2>/dev/null
  done
  rm -rf "$root"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.1f}')"; }
q() { psql -X -tA -v ON_ERROR_STOP=1 "postgresql://postgres@127.0.0.1:$1/bte" -c "$2"; }
rows() {
  q "$1" "SELECT (SELECT count(*) FROM core.interaction_events) + (SELECT count(*) FROM core.business_events)
              + (SELECT count(*) FROM core.user_actions) + (SELECT count(*) FROM agent.intent_events)
              + (SELECT count(*) FROM agent.chat_events)"
}
say() { echo "bench-restore: $*" >&2; }

bash "$BTE_ROOT/scripts/pg-cluster.sh" init "$root/primary"
bash "$BTE_ROOT/scripts/backup.sh" configure --apply
bash "$BTE_ROOT/scripts/pg-cluster.sh" start "$root/primary" "$P1"
bash "$BTE_ROOT/scripts/backup.sh" stanza
psql -X -q "postgresql://postgres@127.0.0.1:$P1/postgres" -c "CREATE DATABASE bte"
ADMIN="postgresql://postgres@127.0.0.1:$P1/bte" INGEST="postgresql://bte_ingest@127.0.0.1:$P1/bte"
"$BTE" migrate --database-url "$ADMIN" >/dev/null
"$BTE" topics apply --topic-prefix "$prefix" --brokers "$BTE_KAFKA_BROKERS" >/dev/null
say "producing and ingesting $EVENTS events"
"$BTE" generate --events "$EVENTS" --seed 1 --bad-rounds 0 --duplicate-every 0 --topic-prefix "$prefix" \
  --brokers "$BTE_KAFKA_BROKERS" >/dev/null
t=$(now)
"$BTE" ingest --log-level warning --until-idle --topic-prefix "$prefix" --brokers "$BTE_KAFKA_BROKERS" --database-url "$INGEST" >/dev/null
ingest_s=$(secs "$t" "$(now)")
stored=$(rows "$P1")
t=$(now)
bash "$BTE_ROOT/scripts/backup.sh" full 2>/dev/null
backup_s=$(secs "$t" "$(now)")
size=$(q "$P1" "SELECT pg_size_pretty(pg_database_size('bte'))")

# A second stream arrives while ingest runs; the primary dies in the middle of it.
second=$(( EVENTS / 5 ))
"$BTE" ingest --log-level warning --topic-prefix "$prefix" --brokers "$BTE_KAFKA_BROKERS" --database-url "$INGEST" >/dev/null 2>&1 &
ingest_pid=$!
"$BTE" generate --events "$second" --seed 2 --bad-rounds 0 --duplicate-every 0 --topic-prefix "$prefix" \
  --brokers "$BTE_KAFKA_BROKERS" >/dev/null
until [ "$(rows "$P1")" -ge $(( stored + second / 2 )) ]; do sleep 0.2; done
killed_at=$(now)
bash "$BTE_ROOT/scripts/pg-cluster.sh" stop "$root/primary" immediate
kill "$ingest_pid" 2>/dev/null; wait "$ingest_pid" 2>/dev/null || true; ingest_pid=""

say "restoring the latest archived state"
t=$(now)
bash "$BTE_ROOT/scripts/backup.sh" restore latest "$root/restored" 2>/dev/null
restore_s=$(secs "$t" "$(now)")
t=$(now)
bash "$BTE_ROOT/scripts/pg-cluster.sh" start "$root/restored" "$P2"
bash "$BTE_ROOT/scripts/pg-cluster.sh" ready "$P2"
recover_s=$(secs "$t" "$(now)")
restored_rows=$(rows "$P2")
last_commit=$(q "$P2" "SELECT extract(epoch FROM max(updated_at)) FROM bte.ingest_offsets")
# What the primary had committed when it died: its own crash recovery says.
bash "$BTE_ROOT/scripts/pg-cluster.sh" start "$root/primary" "$P1" -c archive_mode=off
committed_rows=$(rows "$P1")
bash "$BTE_ROOT/scripts/pg-cluster.sh" stop "$root/primary" immediate
t=$(now)
"$BTE" ingest --log-level warning --until-idle --topic-prefix "$prefix" --brokers "$BTE_KAFKA_BROKERS" \
  --database-url "postgresql://bte_ingest@127.0.0.1:$P2/bte" >/dev/null
catchup_s=$(secs "$t" "$(now)")
final_rows=$(rows "$P2")

echo "stored before the backup: $stored rows ($size), ingested in ${ingest_s} s; full backup ${backup_s} s"
echo "RPO: the primary had committed $committed_rows rows when it died; the archive restored $restored_rows" \
  "(lost $(( committed_rows - restored_rows )) rows, the last $(secs "$last_commit" "$killed_at") s before the kill)"
echo "RTO: restore ${restore_s} s + recovery to a writable server ${recover_s} s" \
  "+ ingest completing from Kafka ${catchup_s} s ($(( final_rows - restored_rows )) rows) = $(python3 -c "print(f'{$restore_s + $recover_s + $catchup_s:.1f}')") s"
echo "after the catch-up: $final_rows rows of the $(( EVENTS + second )) events sent (generated with no bad or repeated records)"
