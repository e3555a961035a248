//! `/api/v1/projects`: read scope to look, write scope to change; a project token sees
//! only its projects (404 for the rest) and cannot create any.

use axum::{http::StatusCode, Json};
use serde::Deserialize;

use app::{
    error::AppError,
    projects::{server::service, Project},
    state::AppState,
};

use super::openapi::{Data, ErrorBody, Paged, Refusals, TooLarge};
use super::{auth::ApiAuth, data, page, ApiError, ApiJson, ApiPath, ApiQuery};
use axum::extract::State;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    operation_id = "projects_list",
    path = "/api/v1/projects",
    tag = "projects",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = Paged<Project>),
        Refusals,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Paged<Project>>, ApiError> {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    key: String,
    name: String,
}

#[utoipa::path(
    post,
    operation_id = "projects_create",
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = Data<Project>),
        Refusals,
        TooLarge,
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<Data<Project>>), ApiError> {
    let project = service::create(&state, &auth.actor(), &auth.meta, &body.key, &body.name).await?;
    Ok((StatusCode::CREATED, data(project)))
}

#[utoipa::path(
    get,
    operation_id = "projects_get",
    path = "/api/v1/projects/{key}",
    tag = "projects",
    params(("key" = String, Path, description = "Project key, like BD")),
    responses(
        (status = 200, description = "OK", body = Data<Project>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Data<Project>>, ApiError> {
    Ok(data(service::get(&state, &auth.actor(), &key).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    name: String,
}

#[utoipa::path(
    patch,
    operation_id = "projects_update",
    path = "/api/v1/projects/{key}",
    tag = "projects",
    params(("key" = String, Path, description = "Project key, like BD")),
    request_body = UpdateProject,
    responses(
        (status = 200, description = "OK", body = Data<Project>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateProject>,
) -> Result<Json<Data<Project>>, ApiError> {
    Ok(data(service::rename(&state, &auth.actor(), &auth.meta, &key, &body.name).await?))
}

#[utoipa::path(
    delete,
    operation_id = "projects_delete",
    path = "/api/v1/projects/{key}",
    tag = "projects",
    params(("key" = String, Path, description = "Project key, like BD")),
    responses(
        (status = 204, description = "Deleted"),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &auth.actor(), &auth.meta, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
