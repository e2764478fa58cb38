-- What the operations dashboard and alerts need to say about the database itself: when the last
-- backup finished (scripts/backup.sh records each one here), whether WAL reaches the archive,
-- and how far each standby is behind.
CREATE TABLE IF NOT EXISTS bte.backups (
    label text PRIMARY KEY,
    backup_type text NOT NULL CHECK (backup_type IN ('full', 'diff', 'incr')),
    started_at timestamptz NOT NULL,
    stopped_at timestamptz NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
SELECT bte.make_immutable('bte.backups');
GRANT SELECT ON bte.backups TO bte_reader;

-- The standbys streaming from this server and their replay lag. pg_stat_replication shows its
-- lag columns only to members of pg_read_all_stats: this function runs as its owner, so the
-- reader sees them when the owner may (a superuser, or a member of pg_monitor); otherwise NULL.
CREATE OR REPLACE FUNCTION bte.replication_lag()
RETURNS TABLE (standby text, state text, lag_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    -- A standby that caught up and sees no new WAL shows no lag (NULL) after a while: 0. A
    -- state hidden from the owner leaves the lag unknown.
    SELECT coalesce(nullif(application_name, ''), client_addr::text, 'standby'), state,
           CASE WHEN state IS NULL THEN NULL
                ELSE coalesce(extract(epoch FROM replay_lag), 0)::double precision END
    FROM pg_stat_replication
    ORDER BY 1
$$;
REVOKE ALL ON FUNCTION bte.replication_lag() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bte.replication_lag() TO bte_reader;
