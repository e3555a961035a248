-- Trusted CI: policies that trust a CI provider's OpenID Connect identity, the ID
-- tokens already exchanged (by hashed jti, until they expire), and what a minted token
-- was minted for.

CREATE TABLE trust_policies (
    id                     TEXT PRIMARY KEY,
    tenant_id              TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    issuer                 TEXT NOT NULL,
    audience               TEXT NOT NULL,
    -- JSON object: claim name -> exact value or * glob.
    conditions             TEXT NOT NULL,
    all_projects           INTEGER NOT NULL DEFAULT 0,
    scopes                 TEXT NOT NULL,
    token_lifetime_minutes INTEGER NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_by             TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX trust_policies_by_issuer ON trust_policies (issuer, status);
CREATE INDEX trust_policies_by_tenant ON trust_policies (tenant_id, created_at);

CREATE TABLE trust_policy_projects (
    policy_id  TEXT NOT NULL REFERENCES trust_policies (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    PRIMARY KEY (policy_id, project_id)
);

CREATE TABLE oidc_jtis (
    jti_hash   TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_jtis_expiry ON oidc_jtis (expires_at);

-- "acme/backend@refs/heads/main (run 123)", and the policy that minted it.
ALTER TABLE api_tokens ADD COLUMN minted_for TEXT;
ALTER TABLE api_tokens ADD COLUMN policy_id TEXT;
