-- The order of successes against everything else ingest stores, fixed by the log. A workspace's
-- peer-based outputs (missed_opportunity_count, next_best_action) count other workspaces'
-- successful acts: which ones an event sees must not depend on which partition the projector
-- happened to read first. Every ingest transaction that stores business events or user actions
-- ends holding the peer-order lock shared; one that stores a `recommendation.acted` with outcome
-- `success` ends holding it exclusively and records here, under it, the offsets the ingest group
-- has stored of every partition (its own rows included). Such transactions therefore commit one
-- at a time against all others, in `id` order, and a row at offset o of partition P was
-- committed before success commit c exactly when o < c's offset of P.
CREATE TABLE IF NOT EXISTS bte.success_commits (
    id bigint PRIMARY KEY,
    ingest_group text NOT NULL,
    topics text[] NOT NULL,
    partitions int[] NOT NULL,
    next_offsets bigint[] NOT NULL,
    -- What each group had stored when this order began: every success before it counts for
    -- every event, as before.
    baseline boolean NOT NULL DEFAULT false,
    committed_at timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(topics) = cardinality(partitions) AND cardinality(topics) = cardinality(next_offsets))
);
CREATE SEQUENCE IF NOT EXISTS bte.success_commit_ids;
CREATE INDEX IF NOT EXISTS success_commits_group ON bte.success_commits (ingest_group, id);
SELECT bte.make_immutable('bte.success_commits');
INSERT INTO bte.success_commits (id, ingest_group, topics, partitions, next_offsets, baseline)
SELECT nextval('bte.success_commit_ids'), consumer_group, array_agg(topic ORDER BY topic, partition),
       array_agg(partition ORDER BY topic, partition), array_agg(next_offset ORDER BY topic, partition), true
FROM bte.ingest_offsets GROUP BY consumer_group;
GRANT INSERT ON bte.success_commits TO bte_ingest;
GRANT USAGE ON SEQUENCE bte.success_commit_ids TO bte_ingest;
GRANT SELECT ON bte.success_commits TO bte_reader;
