//! Cross-site request refusal for everything a browser session can change: server
//! functions (`/_qh/…`) and the API Tokens page's own form posts. SameSite=Strict cookies
//! already stay home; this checks the request itself (Sec-Fetch-Site, else Origin), so
//! a cross-site form post is refused even where cookies would not protect it. The token
//! API (`/api/v1`) is not cookie-based and is left alone.

use axum::{
    extract::Request,
    http::{header, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::error::AppError;

use crate::api_v1::ApiError;

fn cookie_door(path: &str) -> bool {
    path.starts_with("/_qh/") || path == app::tokens::api::LIST_URL
}

/// Whether the request says it comes from this site (or says nothing, as non-browsers do).
fn same_site(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin.split_once("://").map(|(_, rest)| rest) == Some(host)
}

pub async fn refuse_cross_site(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD && cookie_door(req.uri().path()) && !same_site(&req)
    {
        return ApiError(AppError::forbidden("Cross-site requests are refused.")).into_response();
    }
    next.run(req).await
}
