//! Server functions answer every error with 500; this layer gives an `AppError` the
//! status of its code (401, 403, 409, 422, 429, …), so logs, proxies and scripts see
//! what happened. It only touches server-function error answers.

use axum::{body::Body, extract::Request, http::StatusCode, middleware::Next, response::Response};
use server_fn::error::SERVER_FN_ERROR_HEADER;

use app::error::AppError;

/// Error bodies are one small JSON object; anything larger is left alone.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn set_status(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key(SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if let Ok(err) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}
