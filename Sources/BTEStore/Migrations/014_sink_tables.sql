-- What the HTTP API reads: the output topics copied into PostgreSQL by `bte sink` (group
-- bte-sink). Only role bte_sink writes them; it can't write any log.
DO $$
BEGIN
    CREATE ROLE bte_sink NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
-- The ingest login may act as the sink (the sink sets this role on every connection).
GRANT bte_sink TO bte_ingest;

-- One row per signal record; monthly partitions on as_of, created on demand, dropped by
-- `bte sink retention` once older than the months kept.
CREATE TABLE IF NOT EXISTS bte.signal_values (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    signal_type text NOT NULL,
    signal_value double precision NOT NULL,
    label text,
    as_of timestamptz NOT NULL,
    thresholds_version integer NOT NULL,
    -- The record as published (fixed key order and number format), returned as it is.
    record text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, as_of)
) PARTITION BY RANGE (as_of);
CREATE INDEX IF NOT EXISTS signal_values_workspace_idx
    ON bte.signal_values (workspace_id, signal_type, as_of DESC, thresholds_version DESC);

CREATE OR REPLACE FUNCTION bte.ensure_signal_partition(month_start timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', month_start AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'signal_values_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('bte.ensure_signal_partition'));
    IF to_regclass('bte.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE bte.%I PARTITION OF bte.signal_values FOR VALUES FROM (%L) TO (%L)',
                       name, lower_bound, upper_bound);
    END IF;
    RETURN name;
END
$$;
REVOKE ALL ON FUNCTION bte.ensure_signal_partition(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bte.ensure_signal_partition(timestamptz) TO bte_sink;

-- Drops (or, with execute = false, only names) the partitions wholly before the first of the
-- month keep_months - 1 months before now: the current month and the keep_months - 1 before
-- it are kept.
CREATE OR REPLACE FUNCTION bte.drop_signal_partitions(keep_months integer, execute boolean)
RETURNS TABLE (partition_name text, upper_bound timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cutoff timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months - 1)) AT TIME ZONE 'UTC';
    part record;
BEGIN
    IF keep_months < 1 THEN
        RAISE EXCEPTION 'bte: keep_months must be at least 1, not %', keep_months USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('bte.ensure_signal_partition'));
    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'bte.signal_values'::regclass
        ORDER BY 2
    LOOP
        IF part.upper <= cutoff THEN
            IF execute THEN
                EXECUTE format('DROP TABLE bte.%I', part.relname);
            END IF;
            partition_name := part.relname;
            upper_bound := part.upper;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION bte.drop_signal_partitions(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bte.drop_signal_partitions(integer, boolean) TO bte_sink;

-- The latest vector per user, and every vector ever stored.
CREATE TABLE IF NOT EXISTS bte.behavioral_vectors (
    user_id text PRIMARY KEY,
    id uuid NOT NULL,
    as_of timestamptz NOT NULL,
    thresholds_version integer NOT NULL,
    record text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS bte.bv_history (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    as_of timestamptz NOT NULL,
    thresholds_version integer NOT NULL,
    record text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bv_history_user_idx ON bte.bv_history (user_id, as_of);

CREATE TABLE IF NOT EXISTS bte.insights (
    id uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    insight_type text NOT NULL,
    priority text NOT NULL,
    as_of timestamptz NOT NULL,
    thresholds_version integer NOT NULL,
    record text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS insights_workspace_idx ON bte.insights (workspace_id, as_of DESC);

GRANT USAGE ON SCHEMA bte TO bte_sink;
GRANT SELECT, INSERT ON bte.signal_values, bte.bv_history, bte.insights TO bte_sink;
GRANT SELECT, INSERT, UPDATE ON bte.behavioral_vectors TO bte_sink;
GRANT SELECT, INSERT, UPDATE ON bte.ingest_offsets TO bte_sink;
GRANT SELECT ON bte.signal_values, bte.behavioral_vectors, bte.bv_history, bte.insights TO bte_reader;
