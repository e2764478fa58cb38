-- In-context delivery decisions as published on bte.insight-deliveries.v1, stored by the sink:
-- append-only (a decision is never changed; a replay stores nothing new), read by the API's
-- pending and stream endpoints per (workspace, user). `seq` is the order of storing: a user's
-- decisions share a topic partition, which one sink member stores in order, so a stream that
-- resumes after a seq misses none of the user's.
CREATE TABLE IF NOT EXISTS bte.insight_deliveries (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    workspace_id uuid NOT NULL,
    user_id text NOT NULL,
    insight_type text NOT NULL,
    outcome text NOT NULL,
    decided_at timestamptz NOT NULL,
    thresholds_version integer NOT NULL,
    record text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS insight_deliveries_user_idx
    ON bte.insight_deliveries (workspace_id, user_id, decided_at DESC);
CREATE INDEX IF NOT EXISTS insight_deliveries_user_seq_idx ON bte.insight_deliveries (workspace_id, user_id, seq);
SELECT bte.make_immutable('bte.insight_deliveries');
GRANT SELECT, INSERT ON bte.insight_deliveries TO bte_sink;
GRANT SELECT ON bte.insight_deliveries TO bte_reader;
