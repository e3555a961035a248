-- Usage per token per UTC day by kind (what the route needed), the addresses' last use,
-- and who owns a token: a person (stops with them) or the workspace (a service token).

CREATE TABLE api_token_usage (
    token_id TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    -- Days since 1970-01-01, UTC.
    day      BIGINT NOT NULL,
    reads    BIGINT NOT NULL DEFAULT 0,
    writes   BIGINT NOT NULL DEFAULT 0,
    admins   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, day)
);

ALTER TABLE api_token_ips ADD COLUMN last_seen_at BIGINT;
UPDATE api_token_ips SET last_seen_at = first_seen_at;

ALTER TABLE api_tokens ADD COLUMN owner TEXT NOT NULL DEFAULT 'user' CHECK (owner IN ('user', 'workspace'));
CREATE INDEX api_tokens_replaces ON api_tokens (replaces_id);
