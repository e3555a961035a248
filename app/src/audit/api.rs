//! Server function behind the audit log page; the body calls `audit::server`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{audit::AuditEntry, error::AppError};

pub const PAGE_SIZE: i64 = 50;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_before: Option<String>,
}

#[server(prefix = "/_qh", endpoint = "audit/list")]
pub async fn list_audit(action: Option<String>, before: Option<String>) -> Result<AuditPage, AppError> {
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    let action = match action.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            crate::audit::AuditAction::parse(a).ok_or_else(|| AppError::invalid(format!("Unknown action {a:?}.")))?,
        ),
    };
    let (entries, next_before) = crate::audit::server::recent(
        &state,
        &crate::actor::Actor::User(user),
        before.as_deref().filter(|b| !b.is_empty()),
        action,
        PAGE_SIZE,
    )
    .await?;
    Ok(AuditPage { entries, next_before })
}
