-- An event id is unique within its workspace: one workspace's id never blocks another's
-- events. The logs with a workspace are keyed by (workspace_id, id); intent and chat events,
-- which name no workspace, keep their id alone.
ALTER TABLE core.business_events DROP CONSTRAINT IF EXISTS business_events_pkey;
ALTER TABLE core.business_events ADD PRIMARY KEY (workspace_id, event_id);
ALTER TABLE core.user_actions DROP CONSTRAINT IF EXISTS user_actions_pkey;
ALTER TABLE core.user_actions ADD PRIMARY KEY (workspace_id, action_id);

ALTER TABLE core.interaction_events DROP CONSTRAINT IF EXISTS interaction_events_pkey;
ALTER TABLE core.interaction_events ADD PRIMARY KEY (workspace_id, event_id, timestamp);

-- The interaction id registry, rebuilt from the log it guards (every stored row was claimed).
CREATE TABLE bte.interaction_event_ids_scoped (
    workspace_id uuid NOT NULL,
    event_id uuid NOT NULL,
    content_hash bigint NOT NULL,
    PRIMARY KEY (workspace_id, event_id)
);
INSERT INTO bte.interaction_event_ids_scoped (workspace_id, event_id, content_hash)
    SELECT DISTINCT ON (workspace_id, event_id) workspace_id, event_id, content_hash
    FROM core.interaction_events ORDER BY workspace_id, event_id, timestamp;
DROP TABLE bte.interaction_event_ids;
ALTER TABLE bte.interaction_event_ids_scoped RENAME TO interaction_event_ids;
ALTER INDEX bte.interaction_event_ids_scoped_pkey RENAME TO interaction_event_ids_pkey;
SELECT bte.make_immutable('bte.interaction_event_ids');
GRANT SELECT, INSERT ON bte.interaction_event_ids TO bte_ingest;
GRANT SELECT ON bte.interaction_event_ids TO bte_reader;
