-- A user is (workspace_id, user_id): the same user id in two workspaces is two people.
--
-- Interaction events name their workspace in the field workspace_id, kept among the record's
-- extra fields as it always was (so a stored event's content, and the fingerprint that tells a
-- re-delivery from a conflicting duplicate, stay what they were). This column derives it, for
-- the rows stored before this migration as for those after; an event that names none belongs
-- to the default workspace, the nil UUID. Adding a stored generated column rewrites each
-- partition once: it fires no row trigger and changes no stored value of the log.
CREATE OR REPLACE FUNCTION bte.interaction_workspace(extra jsonb) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN extra ->> 'workspace_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN (extra ->> 'workspace_id')::uuid
        ELSE '00000000-0000-0000-0000-000000000000'::uuid
    END
$$;

ALTER TABLE core.interaction_events ADD COLUMN IF NOT EXISTS workspace_id uuid NOT NULL
    GENERATED ALWAYS AS (bte.interaction_workspace(extra)) STORED;
-- Every per-user read names the workspace.
CREATE INDEX IF NOT EXISTS interaction_events_user_idx
    ON core.interaction_events (workspace_id, user_id, timestamp DESC);
DROP INDEX IF EXISTS core.idx_events_user_timestamp;

-- The projection's vector tables: rows stored before carry over to the one workspace whose
-- events name their user; a row whose user id the logs name in several workspaces mixed two
-- people's interactions and is dropped (a replay of the projector republishes scoped vectors).
CREATE TEMPORARY TABLE user_workspaces ON COMMIT DROP AS
    SELECT user_id, min(workspace_id::text)::uuid AS workspace_id
    FROM core.interaction_events GROUP BY user_id HAVING count(DISTINCT workspace_id) = 1;

ALTER TABLE bte.behavioral_vectors ADD COLUMN IF NOT EXISTS workspace_id uuid;
UPDATE bte.behavioral_vectors v SET workspace_id = w.workspace_id
    FROM user_workspaces w WHERE v.workspace_id IS NULL AND v.user_id = w.user_id;
DELETE FROM bte.behavioral_vectors WHERE workspace_id IS NULL;
ALTER TABLE bte.behavioral_vectors DROP CONSTRAINT IF EXISTS behavioral_vectors_pkey;
ALTER TABLE bte.behavioral_vectors ALTER COLUMN workspace_id SET NOT NULL;
ALTER TABLE bte.behavioral_vectors ADD PRIMARY KEY (workspace_id, user_id);

ALTER TABLE bte.bv_history ADD COLUMN IF NOT EXISTS workspace_id uuid;
UPDATE bte.bv_history v SET workspace_id = w.workspace_id
    FROM user_workspaces w WHERE v.workspace_id IS NULL AND v.user_id = w.user_id;
DELETE FROM bte.bv_history WHERE workspace_id IS NULL;
ALTER TABLE bte.bv_history ALTER COLUMN workspace_id SET NOT NULL;
CREATE INDEX IF NOT EXISTS bv_history_workspace_user_idx ON bte.bv_history (workspace_id, user_id, as_of);
DROP INDEX IF EXISTS bte.bv_history_user_idx;
