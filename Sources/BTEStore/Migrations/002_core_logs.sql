-- The business and interaction logs (seeds 000 and 001). Every log also records the unknown
-- fields of its record (`extra`), a content fingerprint for duplicate detection and the Kafka
-- coordinates it came from.
CREATE TABLE IF NOT EXISTS core.business_events (
    event_id uuid PRIMARY KEY,
    event_type text NOT NULL,
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    sub_vertical_id uuid NOT NULL,
    actor_user_id uuid NOT NULL,
    timestamp timestamptz NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    source text,
    extra jsonb,
    content_hash bigint NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS business_events_workspace_ts_idx ON core.business_events (workspace_id, timestamp);
CREATE INDEX IF NOT EXISTS business_events_entity_idx ON core.business_events (entity_id, timestamp);
CREATE INDEX IF NOT EXISTS business_events_type_ts_idx ON core.business_events (event_type, timestamp);
SELECT bte.make_immutable('core.business_events');

CREATE TABLE IF NOT EXISTS core.user_actions (
    action_id uuid PRIMARY KEY,
    action_type text NOT NULL,
    workspace_id uuid NOT NULL,
    actor_user_id uuid NOT NULL,
    timestamp timestamptz NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    extra jsonb,
    content_hash bigint NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS user_actions_workspace_ts_idx ON core.user_actions (workspace_id, timestamp);
SELECT bte.make_immutable('core.user_actions');

-- Partitioned by month; the primary key must include the partition key, so duplicate
-- detection on event_id alone uses interaction_events_event_id_idx (see docs/operations.md).
CREATE TABLE IF NOT EXISTS core.interaction_events (
    event_id uuid NOT NULL,
    timestamp timestamptz NOT NULL,
    event_type text NOT NULL,
    severity text DEFAULT 'info',
    user_id text NOT NULL,
    session_id text,
    device_id text,
    device_type text,
    capsule_id text,
    capsule_type text,
    capsule_category text,
    interaction_target text,
    action_id text,
    component_id text,
    duration_ms integer,
    time_since_last_interaction_ms integer,
    interaction_data jsonb,
    success boolean DEFAULT true,
    error_message text,
    context jsonb,
    extra jsonb,
    content_hash bigint NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, timestamp)
) PARTITION BY RANGE (timestamp);
CREATE INDEX IF NOT EXISTS interaction_events_event_id_idx ON core.interaction_events (event_id);
CREATE INDEX IF NOT EXISTS idx_events_user_timestamp ON core.interaction_events (user_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_events_session ON core.interaction_events (session_id);
CREATE INDEX IF NOT EXISTS idx_events_capsule ON core.interaction_events (capsule_id);
CREATE INDEX IF NOT EXISTS idx_events_type ON core.interaction_events (event_type);
SELECT bte.make_immutable('core.interaction_events');

-- Creates the month's partition if missing. SECURITY DEFINER so that bte_ingest, which may
-- only insert, can still extend the log; the partition is owned by the migration owner.
CREATE OR REPLACE FUNCTION bte.ensure_interaction_partition(month_start timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', month_start AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'interaction_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('bte.ensure_interaction_partition'));
    IF to_regclass('core.' || name) IS NULL THEN
        EXECUTE format('CREATE TABLE core.%I PARTITION OF core.interaction_events FOR VALUES FROM (%L) TO (%L)',
                       name, lower_bound, upper_bound);
        -- Statement triggers on the parent don't fire for a TRUNCATE of the partition itself.
        PERFORM bte.make_immutable(format('core.%I', name)::regclass);
    END IF;
    RETURN name;
END
$$;
REVOKE ALL ON FUNCTION bte.ensure_interaction_partition(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bte.ensure_interaction_partition(timestamptz) TO bte_ingest;

-- Current state per workspace, derived from the logs (seed 000's workspace_state).
CREATE OR REPLACE VIEW core.workspace_state AS
WITH workspaces AS (
    SELECT workspace_id FROM core.business_events
    UNION
    SELECT workspace_id FROM core.user_actions
),
stage AS (
    SELECT DISTINCT ON (workspace_id) workspace_id, metadata ->> 'stage' AS current_sales_stage
    FROM core.business_events
    WHERE event_type IN ('deal.created', 'deal.stage_changed') AND metadata ? 'stage'
    ORDER BY workspace_id, timestamp DESC, event_id DESC
),
given AS (
    SELECT workspace_id, entity_id, timestamp FROM core.business_events WHERE event_type = 'recommendation.given'
),
closed AS (
    SELECT DISTINCT entity_id FROM core.business_events
    WHERE event_type IN ('recommendation.acted', 'recommendation.dismissed')
),
pending AS (
    SELECT g.workspace_id, jsonb_agg(g.entity_id ORDER BY g.timestamp, g.entity_id) AS pending_actions
    FROM given g WHERE NOT EXISTS (SELECT 1 FROM closed c WHERE c.entity_id = g.entity_id)
    GROUP BY g.workspace_id
),
last_given AS (
    SELECT DISTINCT ON (workspace_id) workspace_id, entity_id AS last_recommendation_id
    FROM given ORDER BY workspace_id, timestamp DESC, entity_id DESC
),
last_action AS (
    SELECT workspace_id, max(timestamp) AS last_action_taken_at FROM core.user_actions GROUP BY workspace_id
),
last_event AS (
    SELECT workspace_id, max(ts) AS updated_at FROM (
        SELECT workspace_id, timestamp AS ts FROM core.business_events
        UNION ALL
        SELECT workspace_id, timestamp FROM core.user_actions
    ) e GROUP BY workspace_id
)
SELECT w.workspace_id,
       s.current_sales_stage,
       coalesce(p.pending_actions, '[]'::jsonb) AS pending_actions,
       lg.last_recommendation_id,
       la.last_action_taken_at,
       le.updated_at
FROM workspaces w
LEFT JOIN stage s USING (workspace_id)
LEFT JOIN pending p USING (workspace_id)
LEFT JOIN last_given lg USING (workspace_id)
LEFT JOIN last_action la USING (workspace_id)
LEFT JOIN last_event le USING (workspace_id);

GRANT SELECT, INSERT ON core.business_events, core.user_actions, core.interaction_events TO bte_ingest;
GRANT SELECT ON core.business_events, core.user_actions, core.interaction_events, core.workspace_state TO bte_reader;
