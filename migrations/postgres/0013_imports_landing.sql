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
