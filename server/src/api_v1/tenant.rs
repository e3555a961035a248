//! `GET|PATCH /api/v1/tenant`: the tenant's settings (IP allowlist, claimed hosts).

use axum::{extract::State, Json};

use app::{
    state::AppState,
    tenants::{server as tenants, TenantSettings, UpdateTenant},
};

use super::openapi::{Data, ErrorBody, Refusals, TooLarge};
use super::{auth::ApiAuth, data, ApiError, ApiJson};

#[utoipa::path(
    get,
    operation_id = "tenant_get",
    path = "/api/v1/tenant",
    tag = "tenant",
    responses(
        (status = 200, description = "OK", body = Data<TenantSettings>),
        Refusals,
    )
)]
pub async fn get(State(state): State<AppState>, auth: ApiAuth) -> Result<Json<Data<TenantSettings>>, ApiError> {
    Ok(data(tenants::get(&state, &auth.actor()).await?))
}

#[utoipa::path(
    patch,
    operation_id = "tenant_update",
    path = "/api/v1/tenant",
    tag = "tenant",
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "OK", body = Data<TenantSettings>),
        Refusals,
        TooLarge,
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> Result<Json<Data<TenantSettings>>, ApiError> {
    Ok(data(tenants::update(&state, &auth.actor(), &auth.meta, body).await?))
}
