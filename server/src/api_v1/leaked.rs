//! `POST /api/v1/leaked-tokens` (no auth): secret scanners report tokens they found; each
//! real, live one is revoked. The answer is always the same, so it reveals nothing, and
//! it comes once the report is written down: a restart still revokes what it found.

use axum::{
    extract::State,
    http::{request::Parts, StatusCode},
    Json,
};
use serde::Deserialize;

use app::{error::AppError, state::AppState, tokens::server::lifecycle};

use super::{
    auth::request_meta,
    openapi::{Accepted, ErrorBody, TooLarge},
    ApiError, ApiJson,
};

/// What a secret scanner found.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Report {
    tokens: Vec<String>,
    source: Option<String>,
    url: Option<String>,
}

#[utoipa::path(
    post,
    operation_id = "leaked_report",
    path = "/api/v1/leaked-tokens",
    tag = "tokens",
    security(()),
    request_body = Report,
    responses(
        (status = 202, description = "Always the same answer, whatever was reported", body = Accepted),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The body is not a report", body = ErrorBody),
        (status = 429, description = "Too many reports from this address, or too many being checked", body = ErrorBody),
        (status = 500, description = "The report could not be written down: nothing was taken, send it again", body = ErrorBody),
        TooLarge,
    )
)]
pub async fn report(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<Report>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let meta = request_meta(&parts, &state);
    state.guard.leak_report(meta.ip.as_deref().and_then(|ip| ip.parse().ok()))?;
    let slot = state.guard.leak_slot()?;
    // Checked and written down before the answer (one bcrypt check a token, one row a
    // report, whatever it held); revoked after it, or at the next start if the server
    // stops first. The work runs on its own task, so a caller who stops waiting (or the
    // request timeout) never cancels a report half-way.
    let (accepted, answer) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _slot = slot;
        let (source, url) = (body.source.as_deref(), body.url.as_deref());
        let id = lifecycle::accept_leak_report(&state, &body.tokens, source, url, &meta).await;
        let _ = accepted.send(id.as_ref().map(|_| ()).map_err(Clone::clone));
        let Ok(id) = id else { return };
        if let Err(e) = lifecycle::act_on_leak_report(&state, &id).await {
            tracing::warn!(error = %e, "could not revoke a leak report's tokens; the resumer will retry");
        }
    });
    answer.await.map_err(|_| AppError::internal())??;
    Ok((StatusCode::ACCEPTED, Json(Accepted { status: "accepted".to_string() })))
}
