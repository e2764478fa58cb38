-- Erasable people on append-only logs. Every person (a workspace's user) gets a subject: a random
-- id that stands for them in the logs and a key of their own. From here on ingest stores a
-- person's rows under the subject id (never the user id) and seals their personal content with
-- the subject's key: a person is erased by deleting their subject, which leaves the log rows
-- unchanged but unreadable as theirs. The keys live in a schema of their own that only ingest
-- (creating subjects), privacy (export, erasure) and the migration owner can read.
CREATE SCHEMA IF NOT EXISTS bte_keys;

CREATE TABLE IF NOT EXISTS bte_keys.subjects (
    subject uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    user_id text NOT NULL,
    key bytea NOT NULL CHECK (octet_length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, user_id)
);

-- Rows stored before this migration have no subject: their columns hold what the producer sent.
ALTER TABLE core.interaction_events ADD COLUMN IF NOT EXISTS subject uuid, ADD COLUMN IF NOT EXISTS sealed bytea;
ALTER TABLE core.business_events ADD COLUMN IF NOT EXISTS subject uuid, ADD COLUMN IF NOT EXISTS sealed bytea;
ALTER TABLE core.user_actions ADD COLUMN IF NOT EXISTS subject uuid, ADD COLUMN IF NOT EXISTS sealed bytea;
-- An export and an erasure find a person's business events and actions by subject.
CREATE INDEX IF NOT EXISTS business_events_subject_idx ON core.business_events (subject) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS user_actions_subject_idx ON core.user_actions (subject) WHERE subject IS NOT NULL;

-- The logs as the computations read them: each row's user id is its subject's, and rows of an
-- erased subject are gone from the interactions. A business event or action of an erased actor
-- stays (a workspace's counts are not personal data) under `erased:<subject>`, a stand-in that
-- leads to nobody and that no actor id can be (those are UUIDs): each erased actor stays one
-- actor, so what the workspace's signals count per actor does not change. `stored_user_id` is
-- the column as stored, for lookups through the (workspace_id, user_id) index.
CREATE OR REPLACE VIEW core.interaction_events_live AS
SELECT e.event_id, e.timestamp, e.event_type, e.severity,
       CASE WHEN e.subject IS NULL THEN e.user_id ELSE s.user_id END AS user_id,
       e.user_id AS stored_user_id,
       e.session_id, e.device_type, e.capsule_id, e.capsule_type, e.capsule_category, e.interaction_target,
       e.action_id, e.component_id, e.duration_ms, e.time_since_last_interaction_ms, e.success,
       e.workspace_id, e.content_hash, e.source_topic, e.source_partition, e.source_offset, e.ingested_at
FROM core.interaction_events e
LEFT JOIN bte_keys.subjects s ON s.subject = e.subject
WHERE e.subject IS NULL OR s.subject IS NOT NULL;

CREATE OR REPLACE VIEW core.business_events_live AS
SELECT e.event_id, e.event_type, e.entity_type, e.entity_id, e.workspace_id, e.sub_vertical_id,
       CASE WHEN e.subject IS NULL THEN e.actor_user_id::text
            WHEN s.subject IS NULL THEN 'erased:' || e.subject::text ELSE s.user_id END AS actor_user_id,
       e.timestamp, e.metadata, e.source, e.content_hash, e.source_topic, e.source_partition, e.source_offset,
       e.ingested_at
FROM core.business_events e
LEFT JOIN bte_keys.subjects s ON s.subject = e.subject;

CREATE OR REPLACE VIEW core.user_actions_live AS
SELECT e.action_id, e.action_type, e.workspace_id,
       CASE WHEN e.subject IS NULL THEN e.actor_user_id::text
            WHEN s.subject IS NULL THEN 'erased:' || e.subject::text ELSE s.user_id END AS actor_user_id,
       e.timestamp, e.content_hash, e.source_topic, e.source_partition, e.source_offset, e.ingested_at
FROM core.user_actions e
LEFT JOIN bte_keys.subjects s ON s.subject = e.subject;

-- Which subject stands for a person, without the key: the readers translate a user to the id
-- the log stores.
CREATE OR REPLACE VIEW bte_keys.subject_ids AS SELECT subject, workspace_id, user_id FROM bte_keys.subjects;

GRANT USAGE ON SCHEMA bte_keys TO bte_ingest, bte_reader, bte_privacy;
GRANT SELECT, INSERT ON bte_keys.subjects TO bte_ingest;
GRANT SELECT, DELETE ON bte_keys.subjects TO bte_privacy;
GRANT SELECT ON bte_keys.subject_ids TO bte_reader, bte_privacy, bte_ingest;
GRANT SELECT ON core.interaction_events_live, core.business_events_live, core.user_actions_live
    TO bte_reader, bte_privacy, bte_ingest, bte_models;
