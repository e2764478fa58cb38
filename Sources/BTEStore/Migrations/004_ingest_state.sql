-- Where ingest is in each partition, and what it refused.
CREATE TABLE IF NOT EXISTS bte.ingest_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);

CREATE TABLE IF NOT EXISTS bte.rejected_events (
    id bigserial PRIMARY KEY,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    message_key bytea,
    payload bytea,
    error_code text NOT NULL,
    error_message text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX IF NOT EXISTS rejected_events_code_idx ON bte.rejected_events (error_code, rejected_at);
SELECT bte.make_immutable('bte.rejected_events');

GRANT SELECT, INSERT, UPDATE ON bte.ingest_offsets TO bte_ingest;
GRANT SELECT, INSERT ON bte.rejected_events TO bte_ingest;
GRANT USAGE ON SEQUENCE bte.rejected_events_id_seq TO bte_ingest;
GRANT SELECT ON bte.ingest_offsets, bte.rejected_events TO bte_reader;
