-- Keys of the HTTP API: only each key's SHA-256 is stored; the key itself is shown once.
CREATE TABLE IF NOT EXISTS bte.api_keys (
    id bigserial PRIMARY KEY,
    -- The key's first characters, to recognise it in lists and logs without revealing it.
    key_prefix text NOT NULL,
    key_sha256 bytea NOT NULL UNIQUE CHECK (octet_length(key_sha256) = 32),
    workspace_id uuid NOT NULL,
    scope text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    -- Token bucket: requests per second, and the burst above it.
    rate_per_second integer NOT NULL CHECK (rate_per_second > 0),
    burst integer NOT NULL CHECK (burst > 0),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_by text,
    revoked_at timestamptz
);

GRANT SELECT ON bte.api_keys TO bte_reader;
GRANT SELECT, INSERT ON bte.api_keys TO bte_admin;
GRANT UPDATE (revoked_by, revoked_at) ON bte.api_keys TO bte_admin;
GRANT USAGE ON SEQUENCE bte.api_keys_id_seq TO bte_admin;
