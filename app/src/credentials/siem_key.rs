//! A `SIEM-LOG-ONLY` key: a token whose name starts with `SIEM-LOG-ONLY`, made for a log
//! collector. It may call only `GET /api/v1/audit-logs` (authentication refuses anything
//! else with 403 `restricted_endpoint`), and reads the entries of its projects; it manages
//! nothing, whatever scopes it carries.

use crate::error::AppError;

/// Prefix of names whose tokens may only read the audit log.
pub const SIEM_PREFIX: &str = "SIEM-LOG-ONLY";

/// The one place a token's name decides its kind (the contract says so).
pub fn is_siem_name(name: &str) -> bool {
    name.starts_with(SIEM_PREFIX)
}

/// The only request a SIEM key may make.
pub fn may_request(method: &str, path: &str) -> bool {
    method == "GET" && path == "/api/v1/audit-logs"
}

pub fn refusal() -> AppError {
    super::restricted("This key may only read the audit log (GET /api/v1/audit-logs).")
}
