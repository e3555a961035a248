//! `GET|PATCH /api/v1/tenant`: the tenant's settings (IP allowlist, claimed hosts).

use axum::{extract::State, Json};
use serde_json::Value;

use app::{
    state::AppState,
    tenants::{server as tenants, UpdateTenant},
    tokens::Scope,
};

use super::{auth::ApiAuth, data, ApiError, ApiJson};

pub async fn get(State(state): State<AppState>, auth: ApiAuth) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Admin)?;
    Ok(data(tenants::get(&state, &auth.actor()).await?))
}

pub async fn update(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiJson(body): ApiJson<UpdateTenant>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Admin)?;
    Ok(data(tenants::update(&state, &auth.actor(), &auth.meta, body).await?))
}
