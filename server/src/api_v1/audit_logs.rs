//! `GET /api/v1/audit-logs?since=&cursor=&limit=&action=`: admin scope or a
//! `SIEM-LOG-ONLY` key; oldest first, so a collector can follow the cursor forever.

use axum::{extract::State, Json};
use serde::Deserialize;
use time::OffsetDateTime;

use app::{
    audit::{server as audit, AuditAction, AuditEntry},
    error::AppError,
    state::AppState,
};

use super::openapi::{Paged, Refusals};
use super::{auth::ApiAuth, page, ApiError, ApiQuery};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    since: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    action: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "audit_logs_list",
    path = "/api/v1/audit-logs",
    tag = "audit",
    params(Params),
    responses(
        (status = 200, description = "OK", body = Paged<AuditEntry>),
        Refusals,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiQuery(p): ApiQuery<Params>,
) -> Result<Json<Paged<AuditEntry>>, ApiError> {
    let since = p
        .since
        .as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(OffsetDateTime::unix_timestamp)
                .map_err(|_| AppError::invalid("since must be an RFC 3339 time, like 2026-01-31T00:00:00Z."))
        })
        .transpose()?;
    let action = p
        .action
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(|a| AuditAction::parse(a).ok_or_else(|| AppError::invalid(format!("Unknown action {a:?}."))))
        .transpose()?;
    let (entries, next) = audit::page(&state, &auth.actor(), since, p.cursor.as_deref(), action, p.limit).await?;
    Ok(page(entries, next))
}
