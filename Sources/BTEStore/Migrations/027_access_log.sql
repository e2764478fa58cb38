-- Every read of personal data through the HTTP API: who (the key), what (the route and the
-- user), when, which workspace. Append-only. The API appends through its reader login, whose
-- sessions are read-only by default: each entry is its own READ WRITE transaction, and this
-- table is the only one the reader may insert into.
CREATE TABLE IF NOT EXISTS privacy.access_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    key_id bigint NOT NULL,
    workspace_id uuid NOT NULL,
    route text NOT NULL,
    user_id text
);
CREATE INDEX IF NOT EXISTS access_log_user_idx ON privacy.access_log (workspace_id, user_id, at);
SELECT bte.make_immutable('privacy.access_log');
GRANT SELECT, INSERT ON privacy.access_log TO bte_reader;
GRANT SELECT ON privacy.access_log TO bte_privacy;
