-- Test cases, runs and their results, inside projects. Unix-second timestamps.

CREATE TABLE cases (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (project_id, title)
);
CREATE INDEX cases_page ON cases (project_id, created_at, id);

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- open: results may still come; passed / failed once closed.
    status      TEXT NOT NULL CHECK (status IN ('open', 'passed', 'failed')),
    source      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX runs_page ON runs (project_id, created_at, id);

CREATE TABLE results (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    case_id     TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    status      TEXT NOT NULL CHECK (status IN ('passed', 'failed', 'skipped', 'error')),
    duration_ms INTEGER,
    message     TEXT,
    created_at  INTEGER NOT NULL,
    seq         INTEGER NOT NULL
);
CREATE INDEX results_page ON results (run_id, seq);
