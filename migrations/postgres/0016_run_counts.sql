-- Run pages at monorepo scale. A run keeps its results' counts per outcome and their
-- summed duration on its own row, changed in the same transaction as the results (a
-- batch adds its tally, a take-back or a deleted case subtracts theirs), so a run page
-- or a list of runs never counts a run's results again. Results are read by outcome in
-- report order through one index, so every page of the run page (failed first, then
-- errors, skipped, passed) is a range of it, however deep (keyset paging).
ALTER TABLE runs ADD COLUMN passed_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN failed_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN skipped_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN error_count BIGINT NOT NULL DEFAULT 0;
-- Floating point: durations are stored up to i64::MAX and an integer sum of a few overflows.
ALTER TABLE runs ADD COLUMN duration_total_ms DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Made first: the counts below read it.
CREATE INDEX results_by_outcome ON results (run_id, status, seq);
-- A title search reads the run's results of the cases it matches; deleting a case finds
-- its results (and their runs' tallies) without reading every result.
CREATE INDEX results_by_case ON results (case_id, run_id);

UPDATE runs SET
    passed_count = (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id AND r.status = 'passed'),
    failed_count = (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id AND r.status = 'failed'),
    skipped_count = (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id AND r.status = 'skipped'),
    error_count = (SELECT COUNT(*) FROM results r WHERE r.run_id = runs.id AND r.status = 'error'),
    duration_total_ms = (SELECT COALESCE(SUM(CAST(r.duration_ms AS DOUBLE PRECISION)), 0) FROM results r WHERE r.run_id = runs.id);
