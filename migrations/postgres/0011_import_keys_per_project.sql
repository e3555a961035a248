-- Idempotency keys belong to one project: the same key in another project (another
-- team's job with the docs' example key) is another key, never a 409.
ALTER TABLE import_keys ADD COLUMN project_id TEXT;
UPDATE import_keys SET project_id = (SELECT r.project_id FROM runs r WHERE r.id = import_keys.run_id);
-- A key whose import never finished has no run, so no project: it is dropped (it would
-- only have answered 409 "still running" until it aged out).
DELETE FROM import_keys WHERE project_id IS NULL;
ALTER TABLE import_keys ALTER COLUMN project_id SET NOT NULL;
ALTER TABLE import_keys DROP CONSTRAINT import_keys_pkey;
ALTER TABLE import_keys ADD PRIMARY KEY (tenant_id, project_id, key);
