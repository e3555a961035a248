//! `/api/v1/projects/{key}/cases`, `/runs`, `/runs/{id}/results` and `/runs/import`:
//! read scope to look, write scope to change; the project rules come from the domain.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;

use reports::Format;

use app::{
    error::{AppError, ErrorCode},
    policy::Action,
    state::AppState,
    testing::{
        server::service, Case, CiContext, ImportAnswer, NewCase, NewRun, ResultBatch, Run, RunStatus, TestResult,
        UpdateCase, UpdateRun,
    },
};

use super::openapi::{Data, ErrorBody, Paged, Refusals, TooLarge};
use super::{auth::ApiAuth, data, page, ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    cursor: Option<String>,
    limit: Option<i64>,
    status: Option<RunStatus>,
    /// Only the run with this run key (what `qa-hub finish` looks up).
    run_key: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "testing_list_cases",
    path = "/api/v1/projects/{key}/cases",
    tag = "cases",
    params(("key" = String, Path, description = "Project key, like BD"), PageParams),
    responses(
        (status = 200, description = "OK", body = Paged<Case>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn list_cases(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Paged<Case>>, ApiError> {
    let p = service::list_cases(&state, &auth.actor(), &key, q.cursor.as_deref(), q.limit).await?;
    Ok(page(p.data, p.next_cursor))
}

#[utoipa::path(
    post,
    operation_id = "testing_create_case",
    path = "/api/v1/projects/{key}/cases",
    tag = "cases",
    params(("key" = String, Path, description = "Project key, like BD")),
    request_body = NewCase,
    responses(
        (status = 201, description = "Created", body = Data<Case>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn create_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<NewCase>,
) -> Result<(StatusCode, Json<Data<Case>>), ApiError> {
    Ok((StatusCode::CREATED, data(service::create_case(&state, &auth.actor(), &key, body).await?)))
}

#[utoipa::path(
    get,
    operation_id = "testing_get_case",
    path = "/api/v1/projects/{key}/cases/{id}",
    tag = "cases",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<Case>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn get_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<Json<Data<Case>>, ApiError> {
    Ok(data(service::get_case(&state, &auth.actor(), &key, &id).await?))
}

#[utoipa::path(
    patch,
    operation_id = "testing_update_case",
    path = "/api/v1/projects/{key}/cases/{id}",
    tag = "cases",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    request_body = UpdateCase,
    responses(
        (status = 200, description = "OK", body = Data<Case>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "Conflicts with what exists", body = ErrorBody),
    )
)]
pub async fn update_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateCase>,
) -> Result<Json<Data<Case>>, ApiError> {
    Ok(data(service::update_case(&state, &auth.actor(), &key, &id, body).await?))
}

#[utoipa::path(
    delete,
    operation_id = "testing_delete_case",
    path = "/api/v1/projects/{key}/cases/{id}",
    tag = "cases",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn delete_case(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::delete_case(&state, &auth.actor(), &key, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    operation_id = "testing_list_runs",
    path = "/api/v1/projects/{key}/runs",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), RunParams),
    responses(
        (status = 200, description = "OK", body = Paged<Run>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn list_runs(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunParams>,
) -> Result<Json<Paged<Run>>, ApiError> {
    let p =
        service::list_runs(&state, &auth.actor(), &key, q.status, q.run_key.as_deref(), q.cursor.as_deref(), q.limit)
            .await?;
    Ok(page(p.data, p.next_cursor))
}

#[utoipa::path(
    post,
    operation_id = "testing_create_run",
    path = "/api/v1/projects/{key}/runs",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD")),
    request_body = NewRun,
    responses(
        (status = 201, description = "Created", body = Data<Run>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn create_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<NewRun>,
) -> Result<(StatusCode, Json<Data<Run>>), ApiError> {
    Ok((StatusCode::CREATED, data(service::create_run(&state, &auth.actor(), &key, &body.name).await?)))
}

#[utoipa::path(
    get,
    operation_id = "testing_get_run",
    path = "/api/v1/projects/{key}/runs/{id}",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Data<Run>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn get_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<Json<Data<Run>>, ApiError> {
    Ok(data(service::get_run(&state, &auth.actor(), &key, &id).await?))
}

#[utoipa::path(
    patch,
    operation_id = "testing_update_run",
    path = "/api/v1/projects/{key}/runs/{id}",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    request_body = UpdateRun,
    responses(
        (status = 200, description = "OK", body = Data<Run>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn update_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateRun>,
) -> Result<Json<Data<Run>>, ApiError> {
    Ok(data(service::update_run(&state, &auth.actor(), &key, &id, body).await?))
}

#[utoipa::path(
    delete,
    operation_id = "testing_delete_run",
    path = "/api/v1/projects/{key}/runs/{id}",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn delete_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::delete_run(&state, &auth.actor(), &key, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    operation_id = "testing_list_results",
    path = "/api/v1/projects/{key}/runs/{id}/results",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path), PageParams),
    responses(
        (status = 200, description = "OK", body = Paged<TestResult>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn list_results(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Paged<TestResult>>, ApiError> {
    let p = service::list_results(&state, &auth.actor(), &key, &id, q.cursor.as_deref(), q.limit).await?;
    Ok(page(p.data, p.next_cursor))
}

#[utoipa::path(
    post,
    operation_id = "testing_add_results",
    path = "/api/v1/projects/{key}/runs/{id}/results",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    request_body = ResultBatch,
    responses(
        (status = 201, description = "Added; the run with its new counts", body = Data<Run>),
        Refusals,
        TooLarge,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn add_results(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ResultBatch>,
) -> Result<(StatusCode, Json<Data<Run>>), ApiError> {
    Ok((StatusCode::CREATED, data(service::add_results(&state, &auth.actor(), &key, &id, body.results).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// `playwright` or `junit`.
    format: String,
    /// The run's name (default: the format and the date).
    name: Option<String>,
    /// Imports with this key (1–128 printable ASCII) add to one run until
    /// `POST …/runs/{id}/complete`; after that another one is 409 `conflict`.
    run_key: Option<String>,
    /// The commit the tests ran on.
    commit: Option<String>,
    branch: Option<String>,
    /// An `http(s)://` link to the CI build.
    build_url: Option<String>,
    /// The CI job's name.
    job: Option<String>,
}

#[utoipa::path(
    post,
    operation_id = "testing_import",
    path = "/api/v1/projects/{key}/runs/import",
    tag = "runs",
    params(
        ("key" = String, Path, description = "Project key, like BD"),
        ImportParams,
        ("Idempotency-Key" = Option<String>, Header, description = "1–128 printable ASCII: a repeat within 24 hours with the same key and request answers the first run (with `Idempotent-Replayed: true`) and stores nothing; the same key with another request is 409 `conflict`"),
    ),
    request_body(content = String, description = "A Playwright JSON report or a JUnit XML file (up to 64 MiB and 1 000 000 results by default: QAHUB_MAX_IMPORT_BYTES, QAHUB_MAX_IMPORT_RESULTS)", content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "The run (every shard counted) and what this import accepted", body = ImportAnswer,
            headers(("Idempotent-Replayed" = String, description = "`true` when this answers an earlier import with the same key"))),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
        (status = 409, description = "The key was used for another request, or the run key's run is completed", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the report is larger than the server's limit (64 MiB by default) or holds more results (1 000 000 by default); the message names the limit", body = ErrorBody),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath(key): ApiPath<String>,
    ApiQuery(q): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Result<ApiBytes, ApiError>,
) -> Result<Response, ApiError> {
    // Asked before anything of the report is looked at: a credential that may not write
    // gets its 403, whatever it sent.
    auth.actor().permit(Action::WriteTestData)?;
    let body = match body {
        Ok(ApiBytes(body)) => body,
        Err(ApiError(e)) if e.code == ErrorCode::PayloadTooLarge => {
            let max = state.settings.import_max_bytes;
            return Err(ApiError(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "The report is larger than this server accepts: {} bytes ({} MiB, QAHUB_MAX_IMPORT_BYTES).",
                    max,
                    max >> 20
                ),
            )));
        }
        Err(e) => return Err(e),
    };
    let format = Format::parse(&q.format)
        .ok_or_else(|| AppError::invalid(format!("Unknown format {:?}: use playwright or junit.", q.format)))?;
    let idempotency_key = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str().map_err(|_| AppError::invalid("Idempotency-Key has 1 to 128 printable ASCII characters."))?,
        ),
        None => None,
    };
    let ci = CiContext { commit: q.commit, branch: q.branch, build_url: q.build_url, job: q.job };
    let opts = service::ImportOptions { name: q.name.as_deref(), run_key: q.run_key.as_deref(), idempotency_key, ci };
    let done = service::import(&state, &auth.actor(), &key, format, opts, body).await?;
    let answer = ImportAnswer { data: done.run, receipt: done.receipt };
    let mut res = (StatusCode::CREATED, Json(answer)).into_response();
    if done.replayed {
        res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(res)
}

#[utoipa::path(
    post,
    operation_id = "testing_complete_run",
    path = "/api/v1/projects/{key}/runs/{id}/complete",
    tag = "runs",
    params(("key" = String, Path, description = "Project key, like BD"), ("id" = String, Path)),
    responses(
        (status = 200, description = "The run, closed: passed, or failed when a result failed or errored. Completing it again answers it as it is.", body = Data<Run>),
        Refusals,
        (status = 404, description = "No such thing here (or outside a project token's projects)", body = ErrorBody),
    )
)]
pub async fn complete_run(
    State(state): State<AppState>,
    auth: ApiAuth,
    ApiPath((key, id)): ApiPath<(String, String)>,
) -> Result<Json<Data<Run>>, ApiError> {
    Ok(data(service::complete_run(&state, &auth.actor(), &key, &id).await?))
}
