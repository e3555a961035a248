//! `POST /api/v1/leaked-tokens` (no auth): secret scanners report tokens they found; each
//! real, live one is revoked. The answer is always the same, so it reveals nothing.

use axum::{
    extract::State,
    http::{request::Parts, StatusCode},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use app::{state::AppState, tokens::server::service};

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
        TooLarge,
    )
)]
pub async fn report(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<Report>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let meta = request_meta(&parts, &state);
    service::report_leaked(&state, &body.tokens, body.source.as_deref(), body.url.as_deref(), &meta).await;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "accepted" }))))
}
