-- Every import still landing, key or not: its run, the server instance running it and
-- its last sign of life (each batch). An import whose server died mid-way shows no sign
-- of life; a sweep (or a retry with its Idempotency-Key) marks it taken back, deletes
-- its results a chunk at a time, then gives its run up (a run of its own is deleted; a
-- sharded run has one import fewer). A batch of an import marked taken back writes
-- nothing and stops the import.
CREATE TABLE imports (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    instance     TEXT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    taken_back   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX imports_run ON imports (run_id);
CREATE INDEX imports_heartbeat ON imports (heartbeat_at);
-- A take-back releases the key its import held.
CREATE INDEX import_keys_import ON import_keys (import_id);
-- Imports left landing by the server before this one (it died mid-way: runs stay
-- "importing" forever otherwise) are registered with no sign of life, so the first sweep
-- takes them back: those that held a key, and those that made a run of their own (all of
-- whose results are theirs). Upgrade with no import in flight.
INSERT INTO imports (id, run_id, instance, heartbeat_at)
SELECT import_id, run_id, '', 0 FROM import_keys
WHERE receipt = '' AND import_id IS NOT NULL AND run_id IN (SELECT id FROM runs WHERE importing > 0)
ON CONFLICT DO NOTHING;
INSERT INTO imports (id, run_id, instance, heartbeat_at)
SELECT COALESCE((SELECT MIN(r.import_id) FROM results r WHERE r.run_id = runs.id), runs.id), runs.id, '', 0
FROM runs WHERE importing > 0 AND run_key IS NULL
ON CONFLICT DO NOTHING;
