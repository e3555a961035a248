-- CI-grade uploads: idempotent imports (a key answers the same run for 24 hours),
-- sharded runs (imports with one run key add to one run until it is completed),
-- per-token IP allowlists and a workspace's longest token lifetime.

CREATE TABLE import_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    -- sha-256 of the project, the query and the body: the same key with another request is a conflict.
    fingerprint TEXT NOT NULL,
    run_id      TEXT REFERENCES runs (id) ON DELETE CASCADE,
    -- What the first answer accepted (JSON), answered again on a replay.
    receipt     TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX import_keys_age ON import_keys (tenant_id, created_at);

ALTER TABLE runs ADD COLUMN run_key TEXT;
ALTER TABLE runs ADD COLUMN shards INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX runs_by_key ON runs (project_id, run_key);

-- Comma-separated CIDRs; empty: any address (the workspace's list still applies).
ALTER TABLE api_tokens ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN max_token_lifetime_days INTEGER;
