-- core.interaction_events is partitioned by month, so no unique index can span its event_id.
-- This registry holds one row per stored interaction event: its primary key makes duplicate
-- detection exact even when several ingest writers append at once, without a global lock.
CREATE TABLE IF NOT EXISTS bte.interaction_event_ids (
    event_id uuid PRIMARY KEY,
    content_hash bigint NOT NULL
);
SELECT bte.make_immutable('bte.interaction_event_ids');
GRANT SELECT, INSERT ON bte.interaction_event_ids TO bte_ingest;
GRANT SELECT ON bte.interaction_event_ids TO bte_reader;
