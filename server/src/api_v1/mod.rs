//! The `/api/v1` door: axum handlers for CI pipelines and scripts. Authentication is a
//! layer on the token routes (`auth`); handlers check the scope their route needs and
//! call the same domain functions as the pages. `ApiError` renders the contract's errors.

mod audit_logs;
pub mod auth;
mod leaked;
mod me;
pub mod openapi;
mod projects;
mod tenant;
mod testing;
mod tokens;
mod trust;

use axum::{
    extract::{rejection::JsonRejection, FromRequest, FromRequestParts},
    http::{header, HeaderValue, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};

use app::{
    error::{AppError, ErrorCode},
    state::AppState,
};

use openapi::{Data, ErrorBody, ErrorDetail, Paged};

pub fn router(state: AppState) -> Router<AppState> {
    let authenticated = Router::new()
        .route("/me", get(me::me))
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/{key}", get(projects::get).patch(projects::update).delete(projects::delete))
        .route("/projects/{key}/cases", get(testing::list_cases).post(testing::create_case))
        .route(
            "/projects/{key}/cases/{id}",
            get(testing::get_case).patch(testing::update_case).delete(testing::delete_case),
        )
        .route("/projects/{key}/runs", get(testing::list_runs).post(testing::create_run))
        .route(
            "/projects/{key}/runs/import",
            post(testing::import).layer(axum::extract::DefaultBodyLimit::max(state.settings.import_max_bytes)),
        )
        .route(
            "/projects/{key}/runs/{id}",
            get(testing::get_run).patch(testing::update_run).delete(testing::delete_run),
        )
        .route("/projects/{key}/runs/{id}/complete", post(testing::complete_run))
        .route("/projects/{key}/runs/{id}/results", get(testing::list_results).post(testing::add_results))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", get(tokens::get).patch(tokens::update))
        .route("/tokens/{id}/disable", post(tokens::disable))
        .route("/tokens/{id}/enable", post(tokens::enable))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/tokens/{id}/rotate", post(tokens::rotate))
        .route("/tokens/{id}/usage", get(tokens::usage))
        .route("/tokens/{id}/addresses", get(tokens::addresses))
        .route("/audit-logs", get(audit_logs::list))
        .route("/tenant", get(tenant::get).patch(tenant::update))
        .route("/trust-policies", get(trust::list).post(trust::create))
        .route("/trust-policies/{id}", get(trust::get).patch(trust::update).delete(trust::delete))
        .route("/trust-policies/{id}/disable", post(trust::disable))
        .route("/trust-policies/{id}/enable", post(trust::enable))
        .route_layer(middleware::from_fn_with_state(state, auth::authenticate));
    Router::new()
        .merge(authenticated)
        .route("/leaked-tokens", post(leaked::report))
        .route("/oidc/token", post(trust::exchange))
        .route("/openapi.json", get(openapi::openapi_json))
        .route_layer(middleware::from_fn(crate::metrics::label_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    AppError::new(ErrorCode::NotFound, "No such endpoint.").into()
}

async fn method_not_allowed() -> ApiError {
    AppError::new(ErrorCode::MethodNotAllowed, "This endpoint does not accept that method.").into()
}

/// `{"data": …}`
pub fn data<T>(value: T) -> Json<Data<T>> {
    Json(Data { data: value })
}

/// `{"data": […], "next_cursor": …}`
pub fn page<T>(items: Vec<T>, next_cursor: Option<String>) -> Json<Paged<T>> {
    Json(Paged { data: items, next_cursor })
}

/// `{"error": {"code", "message"}}` with the status of its code, plus the headers the
/// contract asks for (`WWW-Authenticate` on 401 and on `insufficient_scope`,
/// `Retry-After` on 429).
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
        let body = Json(ErrorBody { error: ErrorDetail { code: err.code, message: err.message } });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"qahub\""));
        }
        if err.code == ErrorCode::InsufficientScope {
            let value = match &err.scope {
                Some(scope) => format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
                None => "Bearer error=\"insufficient_scope\"".to_string(),
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(secs) = err.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The largest JSON body (axum's default body limit).
pub const JSON_MAX: usize = 2 * 1024 * 1024;

/// A JSON body whose rejections speak the contract: 400 for unreadable JSON or a wrong
/// content type, 413 past 2 MiB, 422 for JSON of the wrong shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let err = match rejection {
            JsonRejection::JsonDataError(e) => {
                AppError::invalid(format!("The request body is not valid: {}", e.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => {
                AppError::new(ErrorCode::BadRequest, "Send the body as JSON (Content-Type: application/json).")
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("The body is larger than this endpoint accepts ({} MiB).", JSON_MAX / 1024 / 1024),
            ),
            other => AppError::new(
                ErrorCode::BadRequest,
                format!("The request body is not readable JSON: {}", other.body_text()),
            ),
        };
        ApiError(err)
    }
}

/// A raw body (a report) whose rejections speak the contract: 413 past the route's limit.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(ApiBytes(axum::body::Bytes::from_request(req, state).await?))
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let err = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(
                ErrorCode::PayloadTooLarge,
                "The body is larger than this endpoint accepts (64 MiB for reports).",
            )
        } else {
            AppError::new(ErrorCode::BadRequest, format!("The body could not be read: {}", rejection.body_text()))
        };
        ApiError(err)
    }
}

/// Query parameters with contract errors (422).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError(AppError::invalid(format!("The query string is not valid: {}", rejection.body_text())))
    }
}

/// Path parameters; one that cannot be read names nothing that exists (404).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(_: axum::extract::rejection::PathRejection) -> Self {
        ApiError(AppError::not_found("Resource"))
    }
}
