-- Review of intent telemetry (seed 002 §5) and the runtime verb boost rules (§7).
-- The views aggregate over the whole log; `bte intents report` applies time windows itself.

-- A verb candidate is a non-empty string ("cbu.create") or an object naming one in "verb_fqn"
-- (or "verb"): {"verb_fqn": "cbu.create", "score": 0.8}. Anything else names no verb.
CREATE OR REPLACE FUNCTION agent.verb_of(candidate jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN jsonb_typeof(candidate) = 'string' THEN nullif(candidate #>> '{}', '')
        WHEN jsonb_typeof(candidate -> 'verb_fqn') = 'string' AND candidate ->> 'verb_fqn' <> '' THEN candidate ->> 'verb_fqn'
        WHEN jsonb_typeof(candidate -> 'verb') = 'string' AND candidate ->> 'verb' <> '' THEN candidate ->> 'verb'
    END
$$;

-- Whether a list names at least one verb (as verb_of reads them); a jsonpath test, so that
-- counting over millions of rows needs no unnesting.
CREATE OR REPLACE FUNCTION agent.names_a_verb(list jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_typeof(list) = 'array' AND list @? 'lax $[*] ? ((@.type() == "string" && @ != "")
        || (@.verb_fqn.type() == "string" && @.verb_fqn != "") || (@.verb.type() == "string" && @.verb != ""))', false)
$$;

-- The distinct verbs of a candidate or verb list, ranked 1, 2, … by first appearance among the
-- elements that name a verb; nothing when the value is not an array.
CREATE OR REPLACE FUNCTION agent.verbs_of(list jsonb) RETURNS TABLE (verb_fqn text, rank bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v, row_number() OVER (ORDER BY min(n))
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(list) = 'array' THEN list ELSE '[]'::jsonb END)
         WITH ORDINALITY AS e(candidate, n),
         LATERAL agent.verb_of(e.candidate) AS v
    WHERE v IS NOT NULL
    GROUP BY v
$$;

-- Verbs offered when the outcome was clarify_verb (the candidates after SemReg, else before):
-- the verbs discovery could not tell apart.
CREATE OR REPLACE VIEW agent.v_intent_top_clarify_verbs AS
SELECT c.verb_fqn,
       count(*) AS clarify_events,
       count(*) FILTER (WHERE c.rank = 1) AS ranked_first,
       count(DISTINCT i.session_id) AS sessions,
       min(i.ts) AS first_seen,
       max(i.ts) AS last_seen
FROM agent.intent_events i,
     LATERAL agent.verbs_of(coalesce(i.verb_candidates_post, i.verb_candidates_pre)) c
WHERE i.outcome = 'clarify_verb'
GROUP BY c.verb_fqn
ORDER BY clarify_events DESC, c.verb_fqn COLLATE "C";

-- Events where a verb was forced that differs from discovery's first candidate (or discovery
-- had no candidate).
CREATE OR REPLACE VIEW agent.v_intent_semreg_overrides AS
SELECT i.event_id, i.ts, i.session_id, i.prompt_version, i.scope, i.subject_ref_type,
       d.verb_fqn AS discovered_verb_fqn,
       i.forced_verb_fqn, i.chosen_verb_fqn, i.selection_source, i.semreg_mode, i.outcome
FROM agent.intent_events i
LEFT JOIN LATERAL agent.verbs_of(i.verb_candidates_pre) d ON d.rank = 1
WHERE i.forced_verb_fqn IS NOT NULL
  AND i.forced_verb_fqn IS DISTINCT FROM d.verb_fqn
ORDER BY i.ts, i.event_id;

-- How often each verb was denied by SemReg (an event counts once per verb).
CREATE OR REPLACE VIEW agent.v_intent_semreg_denies AS
SELECT d.verb_fqn,
       count(*) AS deny_events,
       count(DISTINCT i.session_id) AS sessions,
       min(i.ts) AS first_seen,
       max(i.ts) AS last_seen
FROM agent.intent_events i,
     LATERAL agent.verbs_of(i.semreg_denied_verbs) d
GROUP BY d.verb_fqn
ORDER BY deny_events DESC, d.verb_fqn COLLATE "C";

-- clarify_args outcomes by verb, and by missing argument when the producer sends
-- `missing_args` (kept in `extra`); missing_arg is NULL for events that don't.
CREATE OR REPLACE VIEW agent.v_intent_arg_fill_failures AS
SELECT coalesce(i.chosen_verb_fqn, i.forced_verb_fqn) AS verb_fqn,
       a.missing_arg,
       count(*) AS failures,
       count(DISTINCT i.session_id) AS sessions,
       min(i.ts) AS first_seen,
       max(i.ts) AS last_seen
FROM agent.intent_events i
LEFT JOIN LATERAL (SELECT m.verb_fqn AS missing_arg FROM agent.verbs_of(i.extra -> 'missing_args') m) a ON true
WHERE i.outcome = 'clarify_args'
GROUP BY 1, 2
ORDER BY failures DESC, coalesce(i.chosen_verb_fqn, i.forced_verb_fqn) COLLATE "C" NULLS LAST, a.missing_arg COLLATE "C" NULLS FIRST;

-- Macro expansions that produced verbs SemReg denied, by macro (the chosen verb) and denied verb.
CREATE OR REPLACE VIEW agent.v_intent_macro_denies AS
SELECT i.chosen_verb_fqn AS macro_verb_fqn,
       d.verb_fqn AS denied_verb_fqn,
       count(*) AS deny_events,
       count(DISTINCT i.session_id) AS sessions,
       min(i.ts) AS first_seen,
       max(i.ts) AS last_seen
FROM agent.intent_events i,
     LATERAL agent.verbs_of(i.macro_denied_verbs) d
WHERE i.macro_semreg_checked
GROUP BY 1, 2
ORDER BY deny_events DESC, i.chosen_verb_fqn COLLATE "C" NULLS LAST, d.verb_fqn COLLATE "C";

-- Boosts for the orchestrator's ranking layer, applied in addition to SemReg. Append-only:
-- a rule is changed by appending a newer one for the same key (weight 0 switches it off).
CREATE TABLE IF NOT EXISTS agent.verb_boost_rules (
    rule_id bigserial PRIMARY KEY,
    scope_bucket text NOT NULL CHECK (scope_bucket <> ''),
    subject_kind text NOT NULL CHECK (subject_kind <> ''),
    phase text NOT NULL CHECK (phase <> ''),
    verb_fqn text NOT NULL CHECK (verb_fqn <> ''),
    boost_weight numeric NOT NULL CHECK (boost_weight BETWEEN -1 AND 1),
    reason text NOT NULL CHECK (reason <> ''),
    proposal_id text NOT NULL CHECK (proposal_id <> ''),
    applied_by text NOT NULL CHECK (applied_by <> ''),
    applied_why text NOT NULL CHECK (applied_why <> ''),
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS verb_boost_rules_proposal_idx ON agent.verb_boost_rules (proposal_id);
SELECT bte.make_immutable('agent.verb_boost_rules');

-- The rules in force: the newest per key.
CREATE OR REPLACE VIEW agent.verb_boosts AS
SELECT DISTINCT ON (scope_bucket, subject_kind, phase, verb_fqn)
       scope_bucket, subject_kind, phase, verb_fqn, boost_weight, reason, proposal_id, applied_by, applied_why, applied_at, rule_id
FROM agent.verb_boost_rules
ORDER BY scope_bucket, subject_kind, phase, verb_fqn, rule_id DESC;

GRANT USAGE ON SCHEMA agent TO bte_admin;
GRANT SELECT, INSERT ON agent.verb_boost_rules TO bte_admin;
GRANT USAGE ON SEQUENCE agent.verb_boost_rules_rule_id_seq TO bte_admin;
GRANT SELECT ON agent.verb_boost_rules, agent.verb_boosts TO bte_admin, bte_reader;
-- The views show event-level telemetry: readers only (bte_admin may not read the logs).
GRANT SELECT ON agent.v_intent_top_clarify_verbs, agent.v_intent_semreg_overrides, agent.v_intent_semreg_denies,
    agent.v_intent_arg_fill_failures, agent.v_intent_macro_denies TO bte_reader;
