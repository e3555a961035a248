//! Request limits, each answered in the contract's error body: header size (431
//! `headers_too_large`), time per request (408 `request_timeout`). Body sizes are set per
//! route (`DefaultBodyLimit`, 413 `payload_too_large`); batch and page sizes by the domain
//! (422 `invalid_request`). Below these, the HTTP server itself caps what it buffers and
//! how long a client may take to send its headers (see `Application::run_until`).

use std::time::Duration;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::error::{AppError, ErrorCode};

use crate::api_v1::ApiError;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Request line and headers together; past this, 431 in the contract body.
    pub max_header_bytes: usize,
    /// Past this, hyper itself refuses the connection's buffer (a bare 431).
    pub max_buffer_bytes: usize,
    /// Time to send the headers, from the connection's first byte.
    pub header_read_timeout: Duration,
    /// Time for the whole request, body upload and handler included.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_buffer_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
        }
    }
}

fn header_bytes(req: &Request) -> usize {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len()) + uri.authority().map_or(0, |a| a.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    line + req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>()
}

pub async fn enforce(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    if header_bytes(&req) > limits.max_header_bytes {
        let message = format!("The request's headers are larger than {} KiB.", limits.max_header_bytes / 1024);
        return ApiError(AppError::new(ErrorCode::HeadersTooLarge, message)).into_response();
    }
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            let message = format!("The request took longer than {} s.", limits.request_timeout.as_secs());
            ApiError(AppError::new(ErrorCode::RequestTimeout, message)).into_response()
        }
    }
}

/// Counts each request that may write (any method but GET, HEAD and OPTIONS) as a writer
/// in flight while it runs, so an import landing on SQLite lets it take the write lock
/// before the import's next batch (`app::db::Writers`). Imports themselves are not
/// counted: they take turns with each other batch by batch.
pub async fn count_writers(State(state): State<app::state::AppState>, req: Request, next: Next) -> Response {
    let reads =
        matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS);
    let import = req.uri().path().ends_with("/runs/import");
    let _writing = (!reads && !import).then(|| state.writers.enter());
    next.run(req).await
}
