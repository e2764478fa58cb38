-- The KPI models' records, with the columns of the models' specification (project_id is the
-- workspace id). Only `bte models` writes them, as role bte_models, which may read the logs
-- and append to these tables and nothing else. Runs are immutable, like the logs.
DO $$
BEGIN
    CREATE ROLE bte_models NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
-- The ingest login may act as the models command (it sets this role on every connection).
GRANT bte_models TO bte_ingest;

CREATE TABLE IF NOT EXISTS bte.segments (
    segment_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id text NOT NULL,
    name text NOT NULL,
    -- A JSON filter over users (docs/models.md), never SQL.
    filter text NOT NULL,
    created_at timestamptz DEFAULT now(),
    UNIQUE (project_id, name)
);

CREATE TABLE IF NOT EXISTS bte.model_configs (
    config_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id text NOT NULL,
    model_type text NOT NULL CHECK (model_type IN ('ohm_simple', 'rc_retention', 'state_space')),
    hyperparams jsonb NOT NULL,
    created_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS bte.estimate_runs (
    run_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id text NOT NULL,
    segment text,
    model_type text,
    params jsonb NOT NULL,
    fit jsonb NOT NULL,
    created_at timestamptz DEFAULT now(),
    config_id uuid REFERENCES bte.model_configs (config_id)
);
CREATE INDEX IF NOT EXISTS idx_estimate_runs_project ON bte.estimate_runs (project_id, created_at DESC);

CREATE TABLE IF NOT EXISTS bte.simulation_runs (
    run_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id text NOT NULL,
    request jsonb NOT NULL,
    result jsonb NOT NULL,
    status text CHECK (status IN ('completed', 'failed')),
    duration_ms integer,
    created_at timestamptz DEFAULT now(),
    estimate_run_id uuid REFERENCES bte.estimate_runs (run_id)
);
CREATE INDEX IF NOT EXISTS idx_sim_runs_project ON bte.simulation_runs (project_id, created_at DESC);

SELECT bte.make_immutable('bte.model_configs');
SELECT bte.make_immutable('bte.estimate_runs');
SELECT bte.make_immutable('bte.simulation_runs');

GRANT USAGE ON SCHEMA core, bte TO bte_models;
GRANT SELECT ON core.business_events, core.user_actions, core.interaction_events TO bte_models;
GRANT SELECT, INSERT ON bte.segments, bte.model_configs, bte.estimate_runs, bte.simulation_runs TO bte_models;
GRANT SELECT ON bte.segments, bte.model_configs, bte.estimate_runs, bte.simulation_runs TO bte_reader;
