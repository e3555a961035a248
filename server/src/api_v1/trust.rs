//! Trusted CI: `/api/v1/trust-policies` (admin scope, tenant-wide reach) and
//! `POST /api/v1/oidc/token` (no Authorization: the CI job's ID token is the credential).

use axum::{
    extract::State,
    http::{header, request::Parts, StatusCode},
    Json,
};

use app::{
    state::AppState,
    trust::{
        server::{exchange, service},
        NewTrustPolicy, OidcExchange, OidcToken, PolicyStatus, TrustPolicy, UpdateTrustPolicy,
    },
};

use super::openapi::{Data, ErrorBody, Refusals, TooLarge};
use super::{auth::request_meta, auth::ApiAuth, data, ApiError, ApiJson, ApiPath};
use crate::assets::SecretBearing;

/// The hub's URL as the request reached it: the default audience of a new policy.
fn hub_url(state: &AppState, parts: &Parts) -> String {
    app::trust::server::hub_url(&state.settings, request_host(parts))
}

/// The host name a request was sent to (`Host`, or HTTP/2's `:authority`).
fn request_host(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).or(parts.uri.authority().map(|a| a.as_str()))
}

#[utoipa::path(
    get,
    operation_id = "trust_list",
    path = "/api/v1/trust-policies",
    tag = "trusted ci",
    responses((status = 200, description = "OK", body = Data<Vec<TrustPolicy>>), Refusals)
)]
pub async fn list(State(state): State<AppState>, auth: ApiAuth) -> Result<Json<Data<Vec<TrustPolicy>>>, ApiError> {
    Ok(data(service::list(&state, &auth.actor()).await?))
}

#[utoipa::path(
    post,
    operation_id = "trust_create",
    path = "/api/v1/trust-policies",
    tag = "trusted ci",
    request_body = NewTrustPolicy,
    responses(
        (status = 201, description = "Created", body = Data<TrustPolicy>),
        Refusals,
        TooLarge,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: ApiAuth,
    parts: Parts,
    ApiJson(body): ApiJson<NewTrustPolicy>,
) -> Result<(StatusCode, Json<Data<TrustPolicy>>), ApiError> {
    let audience = hub_url(&state, &parts);
    let policy = service::create(&state, &auth.actor(), &auth.meta, body, &audience).await?;
    Ok((StatusCode::CREATED, data(policy)))
}

#[utoipa::path(
    get,
    operation_id = "trust_get",
    path = "/api/v1/trust-policies/{id}",
    tag = "trusted ci",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<TrustPolicy>),
        Refusals,
        (status = 404, description = "No such policy here", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TrustPolicy>>, ApiError> {
    Ok(data(service::get(&state, &auth.actor(), &id).await?))
}

#[utoipa::path(
    patch,
    operation_id = "trust_update",
    path = "/api/v1/trust-policies/{id}",
    tag = "trusted ci",
    params(("id" = String, Path)),
    request_body = UpdateTrustPolicy,
    responses(
        (status = 200, description = "OK", body = Data<TrustPolicy>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such policy here", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateTrustPolicy>,
) -> Result<Json<Data<TrustPolicy>>, ApiError> {
    Ok(data(service::update(&state, &auth.actor(), &auth.meta, &id, body).await?))
}

#[utoipa::path(
    delete,
    operation_id = "trust_delete",
    path = "/api/v1/trust-policies/{id}",
    tag = "trusted ci",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted; tokens it minted expire on their own"),
        Refusals,
        (status = 404, description = "No such policy here", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &auth.actor(), &auth.meta, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &AppState,
    auth: &ApiAuth,
    id: &str,
    status: PolicyStatus,
) -> Result<Json<Data<TrustPolicy>>, ApiError> {
    Ok(data(service::set_status(state, &auth.actor(), &auth.meta, id, status).await?))
}

#[utoipa::path(
    post,
    operation_id = "trust_disable",
    path = "/api/v1/trust-policies/{id}/disable",
    tag = "trusted ci",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Disabled: it mints nothing until enabled", body = Data<TrustPolicy>),
        Refusals,
        (status = 404, description = "No such policy here", body = ErrorBody),
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TrustPolicy>>, ApiError> {
    set_status(&state, &auth, &id, PolicyStatus::Disabled).await
}

#[utoipa::path(
    post,
    operation_id = "trust_enable",
    path = "/api/v1/trust-policies/{id}/enable",
    tag = "trusted ci",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Enabled", body = Data<TrustPolicy>),
        Refusals,
        (status = 404, description = "No such policy here", body = ErrorBody),
    )
)]
pub async fn enable(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Data<TrustPolicy>>, ApiError> {
    set_status(&state, &auth, &id, PolicyStatus::Active).await
}

#[utoipa::path(
    post,
    operation_id = "oidc_exchange",
    path = "/api/v1/oidc/token",
    tag = "trusted ci",
    security(()),
    request_body = OidcExchange,
    responses(
        (status = 201, description = "A workspace token restricted as the matching policy says, expiring in minutes", body = Data<OidcToken>,
            headers(("Cache-Control" = String, description = "`no-store, no-transform`: carries a secret, never cached or compressed"))),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 401, description = "`oidc_invalid`: the ID token failed a check (signature, an issuer the job's workspace does not trust, time, algorithm, a replayed ID token); the message says which", body = ErrorBody),
        (status = 403, description = "`oidc_no_policy`: no active policy of the job's workspace matches, or the matching policy's creator may no longer mint its token (the message says why)", body = ErrorBody),
        (status = 422, description = "The body is not an exchange request, or the hub has several workspaces and the request names none (`workspace`)", body = ErrorBody),
        TooLarge,
    )
)]
pub async fn exchange(
    State(state): State<AppState>,
    parts: Parts,
    ApiJson(body): ApiJson<OidcExchange>,
) -> Result<SecretBearing<(StatusCode, Json<Data<OidcToken>>)>, ApiError> {
    let meta = request_meta(&parts, &state);
    let host = request_host(&parts);
    let minted = exchange::exchange(&state, &meta, &body.id_token, body.workspace.as_deref(), host).await?;
    Ok(SecretBearing((StatusCode::CREATED, data(minted))))
}
