-- Duplicate detection goes through bte.interaction_event_ids, and lookups by event_id alone
-- use the leading column of the primary key (event_id, timestamp): the separate event_id
-- index only cost one more index write per stored interaction event.
DROP INDEX IF EXISTS core.interaction_events_event_id_idx;
