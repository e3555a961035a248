//! Server function behind the audit log page; the body calls `audit::server`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{audit::AuditEntry, error::AppError};

pub const PAGE_SIZE: i64 = 50;

/// Actions the filter offers.
pub const ACTIONS: &[&str] = &[
    "token.created",
    "token.renamed",
    "token.updated",
    "token.disabled",
    "token.enabled",
    "token.revoked",
    "token.rotated",
    "token.leaked",
    "token.used_after_expiry",
    "token.new_ip",
    "project.created",
    "project.renamed",
    "project.deleted",
    "user.login",
    "user.login_failed",
    "tenant.created",
    "tenant.settings_changed",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<String>,
}

#[server(prefix = "/_qh", endpoint = "audit/list")]
pub async fn list_audit(action: Option<String>, before: Option<String>) -> Result<AuditPage, AppError> {
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    let action = action.filter(|a| !a.is_empty());
    let (entries, next_before) = crate::audit::server::recent(
        &state,
        &crate::actor::Actor::User(user),
        before.as_deref().filter(|b| !b.is_empty()),
        action.as_deref(),
        PAGE_SIZE,
    )
    .await?;
    Ok(AuditPage { entries, next_before })
}
