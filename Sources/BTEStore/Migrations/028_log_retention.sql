-- Retention of the interaction log: whole monthly partitions older than the months kept are
-- dropped (no row is deleted, no VACUUM), each drop recorded with its bounds and row count.
-- Role bte_retention may do that and nothing else: it can only execute this function.
DO $$
BEGIN
    CREATE ROLE bte_retention NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
GRANT bte_retention TO bte_admin;

CREATE TABLE IF NOT EXISTS privacy.retention_drops (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log text NOT NULL,
    partition_name text NOT NULL,
    lower_bound timestamptz NOT NULL,
    upper_bound timestamptz NOT NULL,
    row_count bigint NOT NULL,
    keep_months integer NOT NULL,
    dropped_by text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT now()
);
SELECT bte.make_immutable('privacy.retention_drops');
GRANT USAGE ON SCHEMA privacy TO bte_retention;
GRANT SELECT ON privacy.retention_drops TO bte_reader, bte_retention;

-- Drops (or, with execute = false, only lists) the interaction log's partitions wholly before
-- the first of the month keep_months - 1 months before now: the current month and the
-- keep_months - 1 before it are kept. The ids of dropped events stay claimed in
-- bte.interaction_event_ids, so a re-sent old event is a duplicate, not stored again.
CREATE OR REPLACE FUNCTION privacy.drop_log_partitions(keep_months integer, execute boolean)
RETURNS TABLE (partition_name text, lower_bound timestamptz, upper_bound timestamptz, row_count bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cutoff timestamptz;
    part record;
BEGIN
    IF keep_months IS NULL OR keep_months < 1 THEN
        RAISE EXCEPTION 'bte: keep_months must be at least 1, not %', keep_months USING ERRCODE = '22023';
    END IF;
    cutoff := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months - 1)) AT TIME ZONE 'UTC';
    -- Ingest creates partitions under the same lock: none appears or goes while this runs.
    PERFORM pg_advisory_xact_lock(hashtext('bte.ensure_interaction_partition'));
    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lower,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'core.interaction_events'::regclass
        ORDER BY 3
    LOOP
        IF part.upper <= cutoff THEN
            EXECUTE format('SELECT count(*) FROM core.%I', part.relname) INTO row_count;
            IF execute THEN
                INSERT INTO privacy.retention_drops
                    (log, partition_name, lower_bound, upper_bound, row_count, keep_months, dropped_by)
                VALUES ('core.interaction_events', part.relname, part.lower, part.upper, row_count, keep_months,
                        session_user);
                EXECUTE format('DROP TABLE core.%I', part.relname);
            END IF;
            partition_name := part.relname;
            lower_bound := part.lower;
            upper_bound := part.upper;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION privacy.drop_log_partitions(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.drop_log_partitions(integer, boolean) TO bte_retention;
