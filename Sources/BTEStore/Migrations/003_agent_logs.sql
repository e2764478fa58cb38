-- Intent telemetry (seed 002) plus prompt_version, and the chat events linked to it.
CREATE TABLE IF NOT EXISTS agent.intent_events (
    event_id uuid PRIMARY KEY,
    ts timestamptz NOT NULL,
    session_id uuid NOT NULL,
    actor_id text NOT NULL,
    entrypoint text NOT NULL,
    utterance_hash text NOT NULL,
    utterance_preview text,
    scope text,
    subject_ref_type text,
    subject_ref_id uuid,
    semreg_mode text NOT NULL,
    semreg_denied_verbs jsonb,
    verb_candidates_pre jsonb,
    verb_candidates_post jsonb,
    chosen_verb_fqn text,
    selection_source text,
    forced_verb_fqn text,
    outcome text NOT NULL,
    dsl_hash text,
    run_sheet_entry_id uuid,
    macro_semreg_checked boolean NOT NULL DEFAULT false,
    macro_denied_verbs jsonb,
    error_code text,
    prompt_version text,
    extra jsonb,
    content_hash bigint NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS intent_events_ts_idx ON agent.intent_events (ts);
CREATE INDEX IF NOT EXISTS intent_events_session_idx ON agent.intent_events (session_id, ts);
CREATE INDEX IF NOT EXISTS intent_events_utter_hash_idx ON agent.intent_events (utterance_hash);
CREATE INDEX IF NOT EXISTS intent_events_chosen_verb_idx ON agent.intent_events (chosen_verb_fqn);
SELECT bte.make_immutable('agent.intent_events');

CREATE TABLE IF NOT EXISTS agent.chat_events (
    event_id uuid PRIMARY KEY,
    ts timestamptz NOT NULL,
    session_id uuid NOT NULL,
    turn_id text,
    assistant_message_hash text,
    assistant_message_preview text,
    intent_event_id uuid,
    extra jsonb,
    content_hash bigint NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS chat_events_session_idx ON agent.chat_events (session_id, ts);
CREATE INDEX IF NOT EXISTS chat_events_intent_idx ON agent.chat_events (intent_event_id);
SELECT bte.make_immutable('agent.chat_events');

GRANT SELECT, INSERT ON agent.intent_events, agent.chat_events TO bte_ingest;
GRANT SELECT ON agent.intent_events, agent.chat_events TO bte_reader;
