-- Audit log entries past QAHUB_AUDIT_RETENTION_DAYS are found by age (app/src/housekeeping.rs).
CREATE INDEX audit_log_age ON audit_log (created_at);
