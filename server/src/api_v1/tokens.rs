//! `/api/v1/tokens`: admin scope; the domain makes sure no token mints or widens a
//! token beyond its own power.

use axum::{extract::State, http::StatusCode, Json};
use serde::Deserialize;

use app::{
    state::AppState,
    tokens::{
        server::{
            lifecycle::{self, Transition},
            service::{self, ListQuery},
        },
        CreateToken, CreatedToken, RotateToken, TokenAddress, TokenStatus, TokenSummary, TokenUsage, UpdateToken,
    },
};

use super::openapi::{Data, ErrorBody, Paged, Refusals, TooLarge};
use super::{auth::ApiAuth, data, page, ApiError, ApiJson, ApiPath, ApiQuery};
use crate::assets::SecretBearing;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    q: Option<String>,
    status: Option<TokenStatus>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    operation_id = "tokens_list",
    path = "/api/v1/tokens",
    tag = "tokens",
    params(ListParams),
    responses(
        (status = 200, description = "OK", body = Paged<TokenSummary>),
        Refusals,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Paged<TokenSummary>>, ApiError> {
    let query = ListQuery { search: p.q, status: p.status, cursor: p.cursor, limit: p.limit };
    let result = service::list(&state, &auth.actor(), query).await?;
    Ok(page(result.data, result.next_cursor))
}

#[utoipa::path(
    post,
    operation_id = "tokens_create",
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, description = "Created; `token` is shown this once", body = Data<CreatedToken>,
            headers(("Cache-Control" = String, description = "`no-store, no-transform`: carries a secret, never cached or compressed"))),
        Refusals,
        TooLarge,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<SecretBearing<(StatusCode, Json<Data<CreatedToken>>)>, ApiError> {
    let created = lifecycle::create(&state, &auth.actor(), &auth.meta, body).await?;
    Ok(SecretBearing((StatusCode::CREATED, data(created))))
}

#[utoipa::path(
    get,
    operation_id = "tokens_get",
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<TokenSummary>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TokenSummary>>, ApiError> {
    Ok(data(service::get(&state, &auth.actor(), &id).await?))
}

#[utoipa::path(
    patch,
    operation_id = "tokens_update",
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path)),
    request_body = UpdateToken,
    responses(
        (status = 200, description = "OK", body = Data<TokenSummary>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateToken>,
) -> Result<Json<Data<TokenSummary>>, ApiError> {
    Ok(data(lifecycle::update(&state, &auth.actor(), &auth.meta, &id, body).await?))
}

#[utoipa::path(
    get,
    operation_id = "tokens_usage",
    path = "/api/v1/tokens/{id}/usage",
    tag = "tokens",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Requests per UTC day by kind for the last 30 days, oldest first", body = Data<TokenUsage>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn usage(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TokenUsage>>, ApiError> {
    Ok(data(service::usage(&state, &auth.actor(), &id).await?))
}

#[utoipa::path(
    get,
    operation_id = "tokens_addresses",
    path = "/api/v1/tokens/{id}/addresses",
    tag = "tokens",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "The last 5 client addresses the token was used from, most recent first", body = Data<Vec<TokenAddress>>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn addresses(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<Vec<TokenAddress>>>, ApiError> {
    Ok(data(service::addresses(&state, &auth.actor(), &id).await?))
}

async fn transition(
    state: AppState,
    auth: ApiAuth,
    id: String,
    t: Transition,
) -> Result<Json<Data<TokenSummary>>, ApiError> {
    Ok(data(lifecycle::set_status(&state, &auth.actor(), &auth.meta, &id, t).await?))
}

#[utoipa::path(
    post,
    operation_id = "tokens_disable",
    path = "/api/v1/tokens/{id}/disable",
    tag = "tokens",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<TokenSummary>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TokenSummary>>, ApiError> {
    transition(state, auth, id, Transition::Disable).await
}

#[utoipa::path(
    post,
    operation_id = "tokens_enable",
    path = "/api/v1/tokens/{id}/enable",
    tag = "tokens",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<TokenSummary>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn enable(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TokenSummary>>, ApiError> {
    transition(state, auth, id, Transition::Enable).await
}

#[utoipa::path(
    post,
    operation_id = "tokens_revoke",
    path = "/api/v1/tokens/{id}/revoke",
    tag = "tokens",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<TokenSummary>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TokenSummary>>, ApiError> {
    transition(state, auth, id, Transition::Revoke).await
}

#[utoipa::path(
    post,
    operation_id = "tokens_rotate",
    path = "/api/v1/tokens/{id}/rotate",
    tag = "tokens",
    params(("id" = String, Path)),
    request_body = Option<RotateToken>,
    responses(
        (status = 201, description = "The new token, shown this once", body = Data<CreatedToken>,
            headers(("Cache-Control" = String, description = "`no-store, no-transform`: carries a secret, never cached or compressed"))),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<SecretBearing<(StatusCode, Json<Data<CreatedToken>>)>, ApiError> {
    // The body is optional: no body means the default, `until_first_use`.
    let req: RotateToken = if body.iter().all(u8::is_ascii_whitespace) {
        RotateToken::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| app::error::AppError::invalid(format!("The request body is not valid: {e}")))?
    };
    let created = lifecycle::rotate(&state, &auth.actor(), &auth.meta, &id, req).await?;
    Ok(SecretBearing((StatusCode::CREATED, data(created))))
}
