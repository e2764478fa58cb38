-- Model requests over HTTP (estimate, simulate, forecast, recommend) as jobs: a slow one is
-- answered 202 and polled at /v1/jobs/{id}; a request repeated with the same Idempotency-Key
-- within 24 hours gets the first one's job. Not a log: a job's status changes once, from
-- running to succeeded or failed, and rows older than 24 hours are deleted. The runs a job
-- records stay in bte.estimate_runs and bte.simulation_runs.
CREATE TABLE IF NOT EXISTS bte.model_jobs (
    job_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('estimate', 'simulate', 'forecast', 'recommend')),
    idempotency_key text,
    request jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    -- The HTTP status of the finished request and its body (the run, or the error).
    http_status integer,
    result jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    -- A job still running after this was lost with its server: reported failed.
    deadline timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS model_jobs_idempotency
    ON bte.model_jobs (project_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS model_jobs_created ON bte.model_jobs (created_at);
GRANT SELECT, INSERT, UPDATE, DELETE ON bte.model_jobs TO bte_models;
