-- What an audit entry is about, by project, so a project credential reads only entries
-- about its projects (an entry with no row here is tenant-wide); and which rotations
-- retire the old token on the new one's first use (within a hard ceiling, `retire_at`).

CREATE TABLE audit_log_projects (
    entry_id   INTEGER NOT NULL REFERENCES audit_log (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (entry_id, project_id)
);

ALTER TABLE api_tokens ADD COLUMN retire_on_first_use INTEGER NOT NULL DEFAULT 0;
