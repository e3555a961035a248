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

use super::{auth::request_meta, ApiError, ApiJson};

#[derive(Deserialize)]
pub struct Report {
    tokens: Vec<String>,
    source: Option<String>,
    url: Option<String>,
}

pub async fn report(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<Report>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let meta = request_meta(&parts, &state);
    service::report_leaked(&state, &body.tokens, body.source.as_deref(), body.url.as_deref(), &meta).await;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "accepted" }))))
}
