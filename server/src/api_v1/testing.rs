//! `/api/v1/projects/{key}/cases`, `/runs`, `/runs/{id}/results` and `/runs/import`:
//! read scope to look, write scope to change; the project rules come from the domain.

use axum::{body::Bytes, extract::State, http::StatusCode, response::IntoResponse, Json};
use serde::Deserialize;
use serde_json::Value;

use app::{
    error::AppError,
    state::AppState,
    testing::{
        server::import::Format, server::service, NewCase, NewRun, ResultBatch, RunStatus, UpdateCase, UpdateRun,
    },
    tokens::Scope,
};

use super::{auth::ApiAuth, data, page, ApiError, ApiJson, ApiPath, ApiQuery};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    cursor: Option<String>,
    limit: Option<i64>,
    status: Option<RunStatus>,
}

pub async fn list_cases(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    let p = service::list_cases(&state, &auth.actor(), &key, q.cursor.as_deref(), q.limit).await?;
    Ok(page(p.data, p.next_cursor))
}

pub async fn create_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<NewCase>,
) -> Result<impl IntoResponse, ApiError> {
    auth.principal.require(Scope::Write)?;
    Ok((StatusCode::CREATED, data(service::create_case(&state, &auth.actor(), &key, body).await?)))
}

pub async fn get_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    Ok(data(service::get_case(&state, &auth.actor(), &key, &id).await?))
}

pub async fn update_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateCase>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Write)?;
    Ok(data(service::update_case(&state, &auth.actor(), &key, &id, body).await?))
}

pub async fn delete_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.principal.require(Scope::Write)?;
    service::delete_case(&state, &auth.actor(), &key, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_runs(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunParams>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    let p = service::list_runs(&state, &auth.actor(), &key, q.status, q.cursor.as_deref(), q.limit).await?;
    Ok(page(p.data, p.next_cursor))
}

pub async fn create_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<NewRun>,
) -> Result<impl IntoResponse, ApiError> {
    auth.principal.require(Scope::Write)?;
    Ok((StatusCode::CREATED, data(service::create_run(&state, &auth.actor(), &key, &body.name).await?)))
}

pub async fn get_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    Ok(data(service::get_run(&state, &auth.actor(), &key, &id).await?))
}

pub async fn update_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateRun>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Write)?;
    Ok(data(service::update_run(&state, &auth.actor(), &key, &id, body).await?))
}

pub async fn delete_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.principal.require(Scope::Write)?;
    service::delete_run(&state, &auth.actor(), &key, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_results(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Value>, ApiError> {
    auth.principal.require(Scope::Read)?;
    let p = service::list_results(&state, &auth.actor(), &key, &id, q.cursor.as_deref(), q.limit).await?;
    Ok(page(p.data, p.next_cursor))
}

pub async fn add_results(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ResultBatch>,
) -> Result<impl IntoResponse, ApiError> {
    auth.principal.require(Scope::Write)?;
    Ok((StatusCode::CREATED, data(service::add_results(&state, &auth.actor(), &key, &id, body.results).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    format: String,
    name: Option<String>,
}

/// Largest report accepted, in bytes.
pub const IMPORT_MAX: usize = 64 * 1024 * 1024;

pub async fn import(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportParams>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    auth.principal.require(Scope::Write)?;
    let format = Format::parse(&q.format)
        .ok_or_else(|| AppError::invalid(format!("Unknown format {:?}: use playwright or junit.", q.format)))?;
    let run = service::import(&state, &auth.actor(), &key, format, q.name.as_deref(), &body).await?;
    Ok((StatusCode::CREATED, data(run)))
}
