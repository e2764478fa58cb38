-- Privacy requests about people (a workspace's user): an append-only record of each request and
-- of every change of its status, per user, with its evidence; and the people whose new events
-- ingest drops (suppressed). Only role bte_privacy (granted to admins) files requests.
DO $$
BEGIN
    CREATE ROLE bte_privacy NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
GRANT bte_privacy TO bte_admin;
-- The API's writer login (bte serve --database-url, as for the models) files requests too.
GRANT bte_privacy TO bte_ingest;

CREATE SCHEMA IF NOT EXISTS privacy;

CREATE TABLE IF NOT EXISTS privacy.requests (
    request_id uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    request_type text NOT NULL
        CHECK (request_type IN ('erase', 'erase_and_suppress', 'suppress', 'unsuppress', 'export')),
    user_ids text[] NOT NULL CHECK (cardinality(user_ids) BETWEEN 1 AND 1000),
    -- The requester's own id for the request: the same reference in a workspace is the same request.
    reference text,
    requested_by text NOT NULL CHECK (requested_by <> ''),
    received_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS requests_reference_idx ON privacy.requests (workspace_id, reference)
    WHERE reference IS NOT NULL;
SELECT bte.make_immutable('privacy.requests');

-- A request's statuses in order; user_id NULL is the request as a whole.
CREATE TABLE IF NOT EXISTS privacy.request_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id uuid NOT NULL REFERENCES privacy.requests,
    user_id text,
    status text NOT NULL CHECK (status IN ('received', 'running', 'completed', 'partial', 'failed')),
    evidence jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS request_events_request_idx ON privacy.request_events (request_id, seq);
SELECT bte.make_immutable('privacy.request_events');

-- Who is suppressed now. Its history is the requests' events; this table is what ingest reads.
CREATE TABLE IF NOT EXISTS privacy.suppressions (
    workspace_id uuid NOT NULL,
    user_id text NOT NULL,
    request_id uuid NOT NULL REFERENCES privacy.requests,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);

GRANT USAGE ON SCHEMA privacy TO bte_privacy, bte_ingest, bte_reader;
GRANT SELECT, INSERT ON privacy.requests, privacy.request_events TO bte_privacy;
GRANT SELECT, INSERT, DELETE ON privacy.suppressions TO bte_privacy;
GRANT SELECT ON privacy.requests, privacy.request_events, privacy.suppressions TO bte_reader;
GRANT SELECT ON privacy.suppressions TO bte_ingest;
-- An export reads what BTE holds about the person.
GRANT USAGE ON SCHEMA core, bte TO bte_privacy;
GRANT SELECT ON core.business_events, core.user_actions, core.interaction_events, bte.behavioral_vectors,
    bte.bv_history, bte.insight_deliveries TO bte_privacy;
