-- Operator keys: the dashboard's pipeline-wide figures (lag, rejects, ingest rate of every
-- workspace) are theirs; a workspace's admin sees its own workspace only.
ALTER TABLE bte.api_keys DROP CONSTRAINT IF EXISTS api_keys_scope_check;
ALTER TABLE bte.api_keys ADD CONSTRAINT api_keys_scope_check
    CHECK (scope IN ('read', 'write', 'admin', 'operator'));
