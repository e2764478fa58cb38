-- Every executed replay: who, why, and each partition's next offset before and after.
CREATE TABLE IF NOT EXISTS bte.replay_log (
    id bigserial PRIMARY KEY,
    consumer_group text NOT NULL,
    offsets_in text NOT NULL CHECK (offsets_in IN ('postgresql', 'kafka')),
    target text NOT NULL,
    requested_by text NOT NULL,
    reason text NOT NULL,
    before jsonb NOT NULL,
    after jsonb NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
SELECT bte.make_immutable('bte.replay_log');

GRANT SELECT, INSERT ON bte.replay_log TO bte_ingest;
GRANT USAGE ON SEQUENCE bte.replay_log_id_seq TO bte_ingest;
GRANT SELECT ON bte.replay_log TO bte_reader;
