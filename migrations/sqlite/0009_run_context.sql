-- Who uploaded a run (a token's name and masked prefix, or a person's email) and the CI
-- context it came from, for the run pages.

ALTER TABLE runs ADD COLUMN uploaded_by TEXT;
ALTER TABLE runs ADD COLUMN commit_sha TEXT;
ALTER TABLE runs ADD COLUMN branch TEXT;
ALTER TABLE runs ADD COLUMN build_url TEXT;
ALTER TABLE runs ADD COLUMN job TEXT;
