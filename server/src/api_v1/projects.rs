//! `/api/v1/projects`: read scope to look, write scope to change; a project token sees
//! only its projects (404 for the rest) and cannot create any.

use axum::{http::StatusCode, response::IntoResponse, Json};
use serde::Deserialize;
use serde_json::Value;

use app::{error::AppError, projects::server::service, state::AppState, tokens::Scope};

use super::{auth::ApiAuth, data, page, ApiError, ApiJson, ApiPath, ApiQuery};
use axum::extract::State;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid("limit must be between 1 and 200.").into());
    }
    let all = service::list(&state, &auth.actor()).await?;
    let start = q.cursor.as_deref().map_or(0, |after| all.iter().take_while(|p| p.key.as_str() <= after).count());
    let items: Vec<_> = all.into_iter().skip(start).take(limit + 1).collect();
    let next = (items.len() > limit).then(|| items[limit - 1].key.clone());
    Ok(page(items.into_iter().take(limit).collect(), next))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    key: String,
    name: String,
}

pub async fn create(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<impl IntoResponse, ApiError> {
    auth.principal.require(Scope::Write)?;
    let project = service::create(&state, &auth.actor(), &auth.meta, &body.key, &body.name).await?;
    Ok((StatusCode::CREATED, data(project)))
}

pub async fn get(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    Ok(data(service::get(&state, &auth.actor(), &key).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    name: String,
}

pub async fn update(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Write)?;
    Ok(data(service::rename(&state, &auth.actor(), &auth.meta, &key, &body.name).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    auth.principal.require(Scope::Write)?;
    service::delete(&state, &auth.actor(), &auth.meta, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
