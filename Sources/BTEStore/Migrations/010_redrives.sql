-- Every redrive attempt of a reject: what happened, and the event it stored (if any).
CREATE TABLE IF NOT EXISTS bte.redrives (
    id bigserial PRIMARY KEY,
    reject_id bigint NOT NULL REFERENCES bte.rejected_events (id),
    outcome text NOT NULL CHECK (outcome IN
        ('stored', 'already_stored', 'conflict', 'refused', 'still_invalid', 'not_redrivable')),
    -- stored_payload: the reject's own bytes, re-validated; fixed: a corrected record.
    record_source text NOT NULL CHECK (record_source IN ('stored_payload', 'fixed')),
    stored_table text,
    stored_event_id text,
    error_code text,
    error_message text,
    requested_by text NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS redrives_reject_idx ON bte.redrives (reject_id, attempted_at);
SELECT bte.make_immutable('bte.redrives');

GRANT SELECT, INSERT ON bte.redrives TO bte_ingest;
GRANT USAGE ON SEQUENCE bte.redrives_id_seq TO bte_ingest;
GRANT SELECT ON bte.redrives TO bte_reader;
