-- Thresholds are configuration, not learning: an append-only audit log of changes by an admin,
-- the current values as a view, and a version that every output carries.
DO $$
BEGIN
    CREATE ROLE bte_admin NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS bte.threshold_changes (
    id bigserial PRIMARY KEY,
    threshold_key text NOT NULL,
    value numeric NOT NULL CHECK (value > 0),
    changed_by text NOT NULL CHECK (changed_by <> ''),
    reason text NOT NULL CHECK (reason <> ''),
    changed_at timestamptz NOT NULL DEFAULT now()
);
SELECT bte.make_immutable('bte.threshold_changes');

CREATE OR REPLACE VIEW bte.thresholds AS
SELECT DISTINCT ON (threshold_key) threshold_key, value, changed_by, reason, changed_at, id AS change_id
FROM bte.threshold_changes
ORDER BY threshold_key, id DESC;

-- The version is the id of the newest change: it only grows.
CREATE OR REPLACE VIEW bte.thresholds_version AS
SELECT coalesce(max(id), 0)::bigint AS version FROM bte.threshold_changes;

INSERT INTO bte.threshold_changes (threshold_key, value, changed_by, reason)
SELECT k, v, 'migration', 'default' FROM (VALUES ('hesitation.expected_views', 3), ('missed.ignore_after_days', 7)) AS d(k, v)
WHERE NOT EXISTS (SELECT 1 FROM bte.threshold_changes);

GRANT USAGE ON SCHEMA bte TO bte_admin;
GRANT SELECT, INSERT ON bte.threshold_changes TO bte_admin;
GRANT USAGE ON SEQUENCE bte.threshold_changes_id_seq TO bte_admin;
GRANT SELECT ON bte.threshold_changes, bte.thresholds, bte.thresholds_version TO bte_admin, bte_reader;
