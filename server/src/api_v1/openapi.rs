//! The OpenAPI 3.1 document, generated from the handlers' own annotations and the shared
//! types, served at `/api/v1/openapi.json`; and `/api/docs`, an interactive reference
//! (Redoc, vendored in the binary: no CDN at build or run time).

use axum::{
    http::{header, HeaderValue},
    response::{Html, IntoResponse},
    Json,
};
use serde::Serialize;
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi, ToSchema,
};

use app::{
    audit::{AuditEntry, Party},
    projects::Project,
    tenants::{Ai, TenantSettings, UpdateTenant},
    testing::{
        Case, CiContext, Counts, ImportAnswer, NewCase, NewResult, NewRun, Receipt, ResultBatch, ResultStatus, Run,
        RunStatus, TestResult, UpdateCase, UpdateRun,
    },
    tokens::{
        CreateToken, CreatedToken, ExpiresIn, RetireOld, RotateToken, Scope, TokenAddress, TokenOwner, TokenStatus,
        TokenSummary, TokenUsage, UpdateToken, UsageCounts, UsageDay,
    },
};

/// Every error: `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "invalid_token", "message": "The token is not valid."}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable; see the error table in the API contract.
    pub code: app::error::ErrorCode,
    /// For people; never holds a secret.
    pub message: String,
}

/// What an authenticated operation may answer besides its success: the contract's
/// error body with these statuses (and 404, 409 where they apply).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refusals {
    /// The body is not readable JSON (or not JSON at all).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or one that is malformed, unknown, revoked, expired or disabled.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Insufficient scope, suspended tenant or owner, address not allowed, or a restricted key.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// A field or query parameter is not valid.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// Too many requests for this token, or too many failed attempts; see `Retry-After`.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The request took longer than the server allows (`request_timeout`).
    #[response(status = 408)]
    RequestTimeout(ErrorBody),
    /// The request line and headers are larger than 16 KiB (`headers_too_large`).
    #[response(status = 431)]
    HeadersTooLarge(ErrorBody),
}

/// What an endpoint with a JSON body adds to `Refusals`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum TooLarge {
    /// The JSON body is larger than 2 MiB (`payload_too_large`).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
}

/// `{"data": …}`
#[derive(Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// `{"data": […], "next_cursor": …}`: pass `next_cursor` back as `cursor` for the next page.
#[derive(Serialize, ToSchema)]
pub struct Paged<T> {
    pub data: Vec<T>,
    /// `null` on the last page; always present.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Always `accepted`.
    pub status: String,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("qh_<prefix>_<secret>")
                    .description(Some("An API token from Settings → Developer → API Tokens."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "Legacy form: `Authorization: ApiKey qh_…`.",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "QA Hub API", version = "1", description = "Test management for CI pipelines, scripts and dashboards. Authenticate with `Authorization: Bearer qh_<prefix>_<secret>`.\n\nEvery token-authenticated answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (with `Retry-After` on 429), and about the token: `QAHub-Token-Expires-At` (RFC 3339) when it expires, `QAHub-Token-Retires-At` (RFC 3339) when a rotation replaced it and it is about to stop, and `QAHub-Token-Hint` (text) when its last 30 days of use fit a lower scope. The `qa-hub` client prints them as CI warnings."),
    paths(
        super::me::me,
        super::projects::list, super::projects::create, super::projects::get, super::projects::update, super::projects::delete,
        super::testing::list_cases, super::testing::create_case, super::testing::get_case, super::testing::update_case, super::testing::delete_case,
        super::testing::list_runs, super::testing::create_run, super::testing::get_run, super::testing::update_run, super::testing::delete_run,
        super::testing::list_results, super::testing::add_results, super::testing::import, super::testing::complete_run,
        super::tokens::list, super::tokens::create, super::tokens::get, super::tokens::update,
        super::tokens::disable, super::tokens::enable, super::tokens::revoke, super::tokens::rotate,
        super::tokens::usage, super::tokens::addresses,
        super::audit_logs::list, super::tenant::get, super::tenant::update, super::leaked::report,
        super::trust::list, super::trust::create, super::trust::get, super::trust::update, super::trust::delete,
        super::trust::disable, super::trust::enable, super::trust::exchange,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, app::error::ErrorCode, Accepted,
        Scope, ExpiresIn, CreateToken, UpdateToken, TokenStatus, TokenSummary, CreatedToken, RetireOld, RotateToken,
        TokenOwner, TokenUsage, UsageDay, UsageCounts, TokenAddress,
        Project, TenantSettings, Ai, UpdateTenant, AuditEntry, Party,
        Case, NewCase, UpdateCase, Run, NewRun, UpdateRun, RunStatus, Counts, ImportAnswer, Receipt, CiContext, TestResult, NewResult, ResultBatch, ResultStatus,
        app::trust::TrustPolicy, app::trust::NewTrustPolicy, app::trust::UpdateTrustPolicy, app::trust::PolicyStatus,
        app::trust::OidcExchange, app::trust::OidcToken,
        super::me::Me, super::projects::CreateProject, super::projects::UpdateProject, super::leaked::Report,
    )),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "me", description = "Who am I"),
        (name = "projects"), (name = "cases"), (name = "runs"), (name = "tokens", description = "Admin scope"),
        (name = "audit", description = "Admin scope or a SIEM-LOG-ONLY key"), (name = "tenant", description = "Admin scope"),
        (name = "trusted ci", description = "Trust policies (admin scope, all projects) and the OIDC exchange (no Authorization)"),
    )
)]
pub struct ApiDoc;

pub async fn openapi_json() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

const REDOC_JS: &str = include_str!("../../assets/redoc.standalone.js");

pub async fn docs() -> Html<&'static str> {
    Html(concat!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>QA Hub API reference</title></head><body>",
        "<redoc spec-url=\"/api/v1/openapi.json\"></redoc>",
        "<script src=\"/api/docs/redoc.standalone.js\"></script></body></html>"
    ))
}

pub async fn redoc_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        REDOC_JS,
    )
}
