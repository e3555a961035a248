-- Imports write their results in short transactions. A run counts the imports still
-- landing in it (`importing`: shown as "importing" until the last is written); each
-- result names the import that wrote it, so an abandoned import (a crash mid-way) is
-- taken back exactly before a retry with the same Idempotency-Key lands it again.
ALTER TABLE runs ADD COLUMN importing BIGINT NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN import_id TEXT;
-- The import holding a key, the server instance running it and its last sign of life.
ALTER TABLE import_keys ADD COLUMN import_id TEXT;
ALTER TABLE import_keys ADD COLUMN instance TEXT;
ALTER TABLE import_keys ADD COLUMN heartbeat_at BIGINT;
