-- API tokens, the audit log, tenant host claims and IP allowlists. Unix-second timestamps.

ALTER TABLE tenants ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '';
ALTER TABLE tenants ADD COLUMN last_active_at BIGINT;

-- Host names a tenant claims: a token of another tenant is refused on them.
CREATE TABLE tenant_hosts (
    host       TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix        TEXT NOT NULL UNIQUE,
    -- bcrypt of the secret part only; the full token is never stored.
    secret_hash   TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    all_projects  BIGINT NOT NULL,
    created_by    TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    -- never | 30d | 90d | custom: what a rotation repeats.
    expiry_policy TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'revoked')),
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    last_used_ip  TEXT,
    -- Rotation: the new token names the one it replaces; the old one may get a deadline.
    replaces_id   TEXT REFERENCES api_tokens (id) ON DELETE SET NULL,
    retire_at     BIGINT
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, created_at);

CREATE TABLE api_token_projects (
    token_id   TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, project_id)
);

-- Addresses a token has been used from (for first-use-from-a-new-IP events).
CREATE TABLE api_token_ips (
    token_id      TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    ip            TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, ip)
);

CREATE TABLE audit_log (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    action       TEXT NOT NULL,
    actor_type   TEXT NOT NULL,
    actor_id     TEXT,
    actor_label  TEXT,
    target_type  TEXT,
    target_id    TEXT,
    target_label TEXT,
    ip           TEXT,
    user_agent   TEXT,
    details      TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
