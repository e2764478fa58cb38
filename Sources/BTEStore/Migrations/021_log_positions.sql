-- The projector reads the logs by Kafka coordinates: the rows a batch stored, and an entity's
-- rows before it. Without these, each batch would scan the logs.
CREATE INDEX IF NOT EXISTS business_events_position_idx
    ON core.business_events (source_topic, source_partition, source_offset);
CREATE INDEX IF NOT EXISTS user_actions_position_idx
    ON core.user_actions (source_topic, source_partition, source_offset);
CREATE INDEX IF NOT EXISTS interaction_events_position_idx
    ON core.interaction_events (source_topic, source_partition, source_offset);
-- The successes that peers count are found by their given's entity.
CREATE INDEX IF NOT EXISTS business_events_workspace_entity_idx
    ON core.business_events (workspace_id, entity_id, timestamp);

