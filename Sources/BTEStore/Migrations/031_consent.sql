-- Consent events are few in a workspace's business log and read for every batch of interactions:
-- an index of them alone keeps that read small however long the log grows.
CREATE INDEX IF NOT EXISTS business_events_consent ON core.business_events (workspace_id, timestamp)
    WHERE event_type IN ('consent.granted', 'consent.withdrawn');

-- A withdrawn consent to a behavioral profile ends the person's stored vector: the sink deletes
-- it when the vector's key ends with a tombstone.
GRANT DELETE ON bte.behavioral_vectors TO bte_sink;
