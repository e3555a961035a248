//! Leak reports (`POST /api/v1/leaked-tokens`): every real, live token reported is
//! revoked, at the same cost whatever was reported.

use serde_json::json;

use super::revoke_once;
use crate::{
    actor::{Actor, RequestMeta},
    audit::AuditAction,
    db::now,
    state::AppState,
    tokens::server::{format, store},
};

pub const LEAK_REPORT_MAX: usize = 20;

/// Revokes every reported token that is real and live. Every well-formed token costs one
/// bcrypt check (against a dummy hash when its prefix is unknown) on the leak budget's own
/// permits, so neither timing nor load says which existed. Runs after the answer.
pub async fn report_leaked(
    state: &AppState,
    tokens: &[String],
    source: Option<&str>,
    url: Option<&str>,
    meta: &RequestMeta,
) {
    let mut seen = Vec::new();
    for presented in tokens.iter().take(LEAK_REPORT_MAX) {
        let Some(parsed) = format::parse(presented.trim()) else { continue };
        if seen.contains(&parsed.prefix().to_string()) {
            continue;
        }
        seen.push(parsed.prefix().to_string());
        let row = store::find_for_auth(&state.db, parsed.prefix(), "").await.ok().flatten();
        let hash = row.as_ref().map_or_else(|| state.dummy_hash.to_string(), |r| r.secret_hash.clone());
        let matches = state.guard.verify_leak(parsed.secret().to_owned(), hash).await;
        let Some(row) = row.filter(|_| matches) else { continue };
        let details = json!({ "source": source, "url": url });
        let result =
            revoke_once(state, &row.token, &Actor::Server, AuditAction::TokenLeaked, meta, details, now()).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not revoke a leaked token");
        }
    }
}
