-- Idempotency keys belong to one project: the same key in another project (another
-- team's job with the docs' example key) is another key, never a 409.
CREATE TABLE import_keys_per_project (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    run_id      TEXT REFERENCES runs (id) ON DELETE CASCADE,
    receipt     TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, project_id, key)
);
-- A key whose import never finished has no run, so no project: it is dropped (it would
-- only have answered 409 "still running" until it aged out).
INSERT INTO import_keys_per_project (tenant_id, project_id, key, fingerprint, run_id, receipt, created_at)
SELECT k.tenant_id, r.project_id, k.key, k.fingerprint, k.run_id, k.receipt, k.created_at
FROM import_keys k JOIN runs r ON r.id = k.run_id;
DROP TABLE import_keys;
ALTER TABLE import_keys_per_project RENAME TO import_keys;
CREATE INDEX import_keys_age ON import_keys (tenant_id, created_at);
