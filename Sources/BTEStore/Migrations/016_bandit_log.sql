-- The constrained bandits' state: an append-only log of decisions and the rewards that
-- followed, written by `bte models bandit` as role bte_models; the posterior is replayed from it.
CREATE TABLE IF NOT EXISTS bte.bandit_log (
    entry_id bigserial PRIMARY KEY,
    project_id text NOT NULL,
    bandit text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('decision', 'reward')),
    decision_id uuid NOT NULL,
    action integer,
    context jsonb,
    reward double precision,
    detail jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS bandit_log_bandit_idx ON bte.bandit_log (project_id, bandit, entry_id);
-- A decision is rewarded at most once.
CREATE UNIQUE INDEX IF NOT EXISTS bandit_log_one_reward ON bte.bandit_log (decision_id) WHERE kind = 'reward';
SELECT bte.make_immutable('bte.bandit_log');
GRANT SELECT, INSERT ON bte.bandit_log TO bte_models;
GRANT USAGE ON SEQUENCE bte.bandit_log_entry_id_seq TO bte_models;
GRANT SELECT ON bte.bandit_log TO bte_reader;
