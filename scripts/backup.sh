#!/usr/bin/env bash
# Backups of a BTE cluster with pgBackRest: continuous WAL archiving, full/differential/incremental
# backups, and point-in-time restores into a new data directory. pgBackRest runs as the postgres
# user, like the server whose WAL it archives.
#
#   scripts/backup.sh configure [--apply]
#                                      write the configuration; print the postgresql.conf settings
#                                      that archive the cluster's WAL into the repository (--apply
#                                      appends them to the cluster's postgresql.conf: restart it)
#   scripts/backup.sh stanza           create the repository's stanza and check that archiving works
#                                      (after the cluster runs with those settings)
#   scripts/backup.sh full|diff|incr   take a backup
#   scripts/backup.sh list             the backups and the archived WAL they can be rolled forward with
#   scripts/backup.sh check            archive the current WAL segment now and check the archive
#   scripts/backup.sh restore TIME DIR restore the cluster as of TIME (e.g. "2026-12-07 03:10:00+00",
#                                      or "latest") into DIR, a new data directory, with archiving off
#                                      so the copy never writes into the repository
#
# Settings (environment):
#   BTE_BACKUP_DIR     where the configuration, repository, logs and locks live
#                      (default /var/tmp/bte-backup-<checkout>; S3 and other repositories: docs/operations.md)
#   BTE_BACKUP_PGDATA  the cluster's data directory (default: the local cluster started by setup.sh)
#   BTE_BACKUP_PGPORT  its port (default $BTE_PG_PORT)
#   BTE_BACKUP_STANZA  the stanza's name (default bte)
#   BTE_BACKUP_FULL_KEEP  full backups kept, with what depends on them (default 2)
#   BTE_BACKUP_DATABASE_URL  where each finished backup is recorded (bte.backups: `bte status`, the
#                      dashboard and the bte_backup_age_seconds metric read it); default the
#                      cluster's $BTE_DB_NAME database as postgres
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
fail() { echo "backup: $*" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

BACKUP_DIR="${BTE_BACKUP_DIR:-/var/tmp/bte-backup-$(echo "$BTE_ROOT" | md5sum | cut -c1-8)}"
STANZA="${BTE_BACKUP_STANZA:-bte}"
PGPORT_="${BTE_BACKUP_PGPORT:-$BTE_PG_PORT}"
PGDATA_="${BTE_BACKUP_PGDATA:-$(cat "$BTE_DEV_DIR/pgdir" 2>/dev/null || true)}"
CONFIG="$BACKUP_DIR/pgbackrest.conf"

pgbr() { as_pg pgbackrest --config="$CONFIG" --stanza="$STANZA" "$@"; }
# Records the newest backup in bte.backups; a backup that can't be recorded is still a backup.
record_backup() {
  local row
  row="$(pgbr info --output=json | python3 -c '
import json, sys
backup = json.load(sys.stdin)[0]["backup"][-1]
print("%s|%s|%d|%d|%d" % (backup["label"], backup["type"], backup["timestamp"]["start"],
      backup["timestamp"]["stop"], backup["info"]["size"]))')" || { echo "backup: could not read the backup's info" >&2; return 0; }
  IFS='|' read -r label type start stop size <<<"$row"
  psql -X -q -v ON_ERROR_STOP=1 "${BTE_BACKUP_DATABASE_URL:-postgresql://postgres@127.0.0.1:$PGPORT_/$BTE_DB_NAME}" \
    -c "INSERT INTO bte.backups (label, backup_type, started_at, stopped_at, size_bytes)
        VALUES ('$label', '$type', to_timestamp($start), to_timestamp($stop), $size) ON CONFLICT (label) DO NOTHING" \
    || echo "backup: $label is taken but not recorded in bte.backups (is the database migrated?)" >&2
}
need_tool() {
  command -v pgbackrest >/dev/null 2>&1 && return
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "backup: installing pgbackrest" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends pgbackrest >/dev/null
}
need_config() { [ -f "$CONFIG" ] || fail "no configuration in $BACKUP_DIR: run scripts/backup.sh configure first"; }
settings() {
  echo "wal_level = replica"
  echo "archive_mode = on"
  echo "archive_command = 'pgbackrest --config=$CONFIG --stanza=$STANZA archive-push %p'"
  # A quiet cluster still closes a segment each minute: at most a minute of commits is unarchived.
  echo "archive_timeout = 60"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  configure)
    need_tool
    [ -n "$PGDATA_" ] || fail "set BTE_BACKUP_PGDATA to the cluster's data directory"
    mkdir -p "$BACKUP_DIR/repo" "$BACKUP_DIR/log" "$BACKUP_DIR/lock" "$BACKUP_DIR/spool"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$BACKUP_DIR"
    chmod 750 "$BACKUP_DIR"
    cat > "$CONFIG" <<CONF
[global]
repo1-path=$BACKUP_DIR/repo
repo1-retention-full=${BTE_BACKUP_FULL_KEEP:-2}
log-path=$BACKUP_DIR/log
lock-path=$BACKUP_DIR/lock
spool-path=$BACKUP_DIR/spool
log-level-console=warn
log-level-file=info
start-fast=y
compress-type=lz4
process-max=2

[$STANZA]
pg1-path=$PGDATA_
pg1-port=$PGPORT_
pg1-socket-path=$PGDATA_
pg1-host-user=postgres
CONF
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$CONFIG"
    if [ "${1:-}" = --apply ]; then
      settings | as_pg tee -a "$PGDATA_/postgresql.conf" >/dev/null
      echo "backup: wrote $CONFIG and archiving settings to $PGDATA_/postgresql.conf (restart the cluster)" >&2
    else
      echo "backup: wrote $CONFIG; the cluster archives into it with these settings:" >&2
      settings
    fi
    ;;
  settings) need_config; settings ;;
  stanza)
    need_config
    pgbr stanza-create
    pgbr check
    ;;
  full|diff|incr)
    need_config
    pgbr --type="$cmd" backup
    pgbr info --output=text | sed -n '/backup:/,$p' | tail -n 6 >&2
    record_backup
    ;;
  list) need_config; pgbr info ;;
  check) need_config; pgbr check ;;
  restore)
    need_config
    [ $# -eq 2 ] || fail "usage: restore TIME DIR (TIME like \"2026-12-07 03:10:00+00\", or latest)"
    target="$1" dir="$2"
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then fail "$dir is not empty"; fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    if [ "$target" = latest ]; then
      pgbr --pg1-path="$dir" --archive-mode=off restore
    else
      pgbr --pg1-path="$dir" --archive-mode=off --type=time --target="$target" --target-action=promote restore
    fi
    echo "backup: restored into $dir; start it with scripts/pg-cluster.sh start $dir PORT," \
      "wait with scripts/pg-cluster.sh ready PORT, then run bte privacy reapply (docs/operations.md)" >&2
    ;;
  *)
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || exit 2
    ;;
esac
