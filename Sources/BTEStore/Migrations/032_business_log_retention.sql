-- Retention of the business and user action logs. Their keys hold no time, so they are not
-- partitioned by month: their rows older than the months kept are deleted, a month at a time,
-- by the one function role bte_retention may run, each month's deletion recorded with its bounds
-- and row count. Consent events are kept whatever their age: the newest one per purpose holds
-- however old, and deleting a withdrawal would resume what the person withdrew from.

-- The ids of deleted rows stay claimed, so an old event sent again is a duplicate, not stored.
CREATE TABLE IF NOT EXISTS bte.retired_event_ids (
    log text NOT NULL,
    workspace_id uuid NOT NULL,
    event_id uuid NOT NULL,
    content_hash bigint NOT NULL,
    PRIMARY KEY (log, workspace_id, event_id)
);
SELECT bte.make_immutable('bte.retired_event_ids');
GRANT SELECT ON bte.retired_event_ids TO bte_ingest;

-- The guard of a table that one privileged function may delete from: DELETE passes while the
-- setting named by the trigger's argument is on (set only inside that function's transaction).
CREATE OR REPLACE FUNCTION bte.refuse_mutation_unless() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting(TG_ARGV[0], true) = 'on' THEN
        RETURN CASE WHEN TG_LEVEL = 'ROW' THEN OLD ELSE NULL END;
    END IF;
    RAISE EXCEPTION 'bte: % is an immutable log; % is not allowed', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001', HINT = 'Logs are append-only. Corrections are new events.';
END
$$;
DO $$
DECLARE
    target record;
BEGIN
    FOR target IN
        SELECT * FROM (VALUES ('core.business_events', 'bte.expiring'), ('core.user_actions', 'bte.expiring'),
                              ('bte.insight_deliveries', 'bte.erasing'), ('bte.rejected_events', 'bte.erasing'))
            AS t(name, setting)
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION bte.refuse_mutation_unless(%L)', target.name, target.setting);
        EXECUTE format('CREATE OR REPLACE TRIGGER refuse_statement BEFORE UPDATE OR DELETE OR TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION bte.refuse_mutation_unless(%L)', target.name, target.setting);
    END LOOP;
END
$$;
DROP FUNCTION IF EXISTS bte.refuse_mutation_unless_erasing();

-- Deletes (or, with execute = false, only lists) the log's rows before the first of the month
-- keep_months - 1 months before now, one row per month with rows: its bounds and row count.
CREATE OR REPLACE FUNCTION privacy.expire_log_rows(log text, keep_months integer, execute boolean)
RETURNS TABLE (partition_name text, lower_bound timestamptz, upper_bound timestamptz, row_count bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    cutoff timestamptz;
    id_column text;
    month record;
BEGIN
    IF keep_months IS NULL OR keep_months < 1 THEN
        RAISE EXCEPTION 'bte: keep_months must be at least 1, not %', keep_months USING ERRCODE = '22023';
    END IF;
    IF log = 'core.business_events' THEN
        id_column := 'event_id';
    ELSIF log = 'core.user_actions' THEN
        id_column := 'action_id';
    ELSE
        RAISE EXCEPTION 'bte: % is not a log whose rows expire (core.business_events, core.user_actions)', log
            USING ERRCODE = '22023';
    END IF;
    cutoff := (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months - 1)) AT TIME ZONE 'UTC';
    FOR month IN EXECUTE format(
        $q$SELECT date_trunc('month', timestamp AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS lower, count(*) AS n
           FROM %s WHERE timestamp < $1 AND %s GROUP BY 1 ORDER BY 1$q$,
        log, CASE WHEN log = 'core.business_events' THEN 'event_type NOT LIKE ''consent.%''' ELSE 'true' END)
        USING cutoff
    LOOP
        partition_name := replace(log, 'core.', '') || '_' || to_char(month.lower AT TIME ZONE 'UTC', 'YYYY_MM');
        lower_bound := month.lower;
        upper_bound := least(month.lower + interval '1 month', cutoff);
        row_count := month.n;
        IF execute THEN
            EXECUTE format(
                $q$INSERT INTO bte.retired_event_ids (log, workspace_id, event_id, content_hash)
                   SELECT %L, workspace_id, %I, content_hash FROM %s
                   WHERE timestamp >= $1 AND timestamp < $2 AND %s ON CONFLICT DO NOTHING$q$,
                log, id_column, log,
                CASE WHEN log = 'core.business_events' THEN 'event_type NOT LIKE ''consent.%''' ELSE 'true' END)
                USING lower_bound, upper_bound;
            PERFORM set_config('bte.expiring', 'on', true);
            EXECUTE format(
                'DELETE FROM %s WHERE timestamp >= $1 AND timestamp < $2 AND %s', log,
                CASE WHEN log = 'core.business_events' THEN 'event_type NOT LIKE ''consent.%''' ELSE 'true' END)
                USING lower_bound, upper_bound;
            PERFORM set_config('bte.expiring', 'off', true);
            INSERT INTO privacy.retention_drops
                (log, partition_name, lower_bound, upper_bound, row_count, keep_months, dropped_by)
            VALUES (log, partition_name, lower_bound, upper_bound, row_count, keep_months, session_user);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION privacy.expire_log_rows(text, integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION privacy.expire_log_rows(text, integer, boolean) TO bte_retention;
