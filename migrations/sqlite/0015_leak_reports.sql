-- Leak reports whose revocations are still to be done (app/src/tokens/server/lifecycle/leaks.rs).
-- A report's tokens are checked before its 202; what that check found is written here in
-- the same breath, as token ids (never a secret), so a restart still revokes them. One
-- row a report, whatever it held, and deleted once its revocations are done.
CREATE TABLE leak_reports (
    id          TEXT PRIMARY KEY,
    token_ids   TEXT NOT NULL,
    source      TEXT,
    url         TEXT,
    ip          TEXT,
    user_agent  TEXT,
    received_at INTEGER NOT NULL
);
CREATE INDEX leak_reports_received ON leak_reports (received_at);
