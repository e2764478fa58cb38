-- A workspace may override a threshold of in-context delivery: a change with a workspace_id
-- applies to that workspace only, and a change with no value ends its override (back to the
-- default every workspace has). The log stays append-only, and every change, either kind,
-- is a new thresholds version.
ALTER TABLE bte.threshold_changes ADD COLUMN IF NOT EXISTS workspace_id uuid;
ALTER TABLE bte.threshold_changes ALTER COLUMN value DROP NOT NULL;
ALTER TABLE bte.threshold_changes DROP CONSTRAINT IF EXISTS threshold_changes_override_check;
ALTER TABLE bte.threshold_changes ADD CONSTRAINT threshold_changes_override_check
    CHECK (value IS NOT NULL OR workspace_id IS NOT NULL);

CREATE OR REPLACE VIEW bte.thresholds AS
SELECT DISTINCT ON (threshold_key) threshold_key, value, changed_by, reason, changed_at, id AS change_id
FROM bte.threshold_changes
WHERE workspace_id IS NULL
ORDER BY threshold_key, id DESC;

CREATE OR REPLACE VIEW bte.workspace_thresholds AS
SELECT workspace_id, threshold_key, value, changed_by, reason, changed_at, change_id FROM (
    SELECT DISTINCT ON (workspace_id, threshold_key)
        workspace_id, threshold_key, value, changed_by, reason, changed_at, id AS change_id
    FROM bte.threshold_changes
    WHERE workspace_id IS NOT NULL
    ORDER BY workspace_id, threshold_key, id DESC) newest
WHERE value IS NOT NULL;

GRANT SELECT ON bte.workspace_thresholds TO bte_admin, bte_reader;
