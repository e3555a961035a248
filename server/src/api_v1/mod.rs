//! The `/api/v1` door: axum handlers for CI pipelines and scripts, and `ApiError`, which
//! renders the contract's error body.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::json;

use app::{
    error::{AppError, ErrorCode},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new().fallback(not_found)
}

async fn not_found() -> ApiError {
    AppError::new(ErrorCode::NotFound, "No such endpoint.").into()
}

/// `{"error": {"code", "message"}}` with the status of its code, plus the headers the
/// contract asks for (`WWW-Authenticate` on 401, `Retry-After` on 429).
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let err = self.0;
        let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Json(json!({ "error": { "code": err.code.as_str(), "message": err.message } }));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"qahub\""));
        }
        if let Some(secs) = err.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
