//! Server functions behind the run pages; bodies call `testing::server::service`.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    error::AppError,
    projects::Project,
    testing::{Run, TestResult},
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectOverview {
    pub project: Project,
    pub latest: Option<Run>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunsView {
    pub project: Project,
    pub runs: Vec<Run>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run: Run,
    pub results: Vec<TestResult>,
    /// Results matching the filter, in all (at least this many when `matching_at_least`).
    pub matching: i64,
    pub matching_at_least: bool,
    /// This page's number, for people (the cursors say where it is).
    pub page: i64,
    pub per_page: i64,
    /// Cursors of the next and the previous page, when there are such pages.
    pub next: Option<String>,
    pub previous: Option<String>,
}

/// Every project with its newest run.
#[server(prefix = "/_qh", endpoint = "runs/overview")]
pub async fn projects_overview() -> Result<Vec<ProjectOverview>, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, testing::server::service};
    let (state, user) = ctx::require_user().await?;
    let actor = Actor::User(user);
    let mut out = Vec::new();
    for project in crate::projects::server::service::list(&state, &actor).await? {
        let latest = service::list_runs(&state, &actor, &project.key, None, None, None, Some(1)).await?.data.pop();
        out.push(ProjectOverview { project, latest });
    }
    Ok(out)
}

/// A project's runs, newest first, a page at a time.
#[server(prefix = "/_qh", endpoint = "runs/list")]
pub async fn project_runs(key: String, #[server(default)] cursor: String) -> Result<RunsView, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, testing::server::service};
    let (state, user) = ctx::require_user().await?;
    let actor = Actor::User(user);
    let project = crate::projects::server::service::get(&state, &actor, &key).await?;
    let cursor = Some(cursor).filter(|c| !c.is_empty());
    let page = service::list_runs(&state, &actor, &key, None, None, cursor.as_deref(), Some(25)).await?;
    Ok(RunsView { project, runs: page.data, next_cursor: page.next_cursor })
}

/// A run and a page of its results, failed first, filtered by outcome and title, after
/// (or before) a cursor of an earlier answer; `page` is only shown.
#[server(prefix = "/_qh", endpoint = "runs/get")]
pub async fn run_page(
    key: String,
    id: String,
    #[server(default)] status: String,
    #[server(default)] q: String,
    #[server(default)] after: String,
    #[server(default)] before: String,
    #[server(default)] page: i64,
) -> Result<RunView, AppError> {
    use crate::{actor::Actor, server_fn_ctx as ctx, testing::server::service, testing::ResultStatus};
    let (state, user) = ctx::require_user().await?;
    let status = match status.as_str() {
        "" | "all" => None,
        s => Some(ResultStatus::parse(s).ok_or_else(|| AppError::invalid(format!("Unknown outcome {s:?}.")))?),
    };
    let shown = service::run_with_results(
        &state,
        &Actor::User(user),
        &key,
        &id,
        status,
        Some(&q),
        Some(after.as_str()),
        Some(before.as_str()),
    )
    .await?;
    // The first page is page 1 however it was reached; others keep the number they were given.
    // Clamped: it is only a label, and `page + 1` must never overflow.
    let page = if shown.previous.is_none() { 1 } else { page.clamp(2, 1_000_000_000) };
    Ok(RunView {
        run: shown.run,
        results: shown.results,
        matching: shown.matching,
        matching_at_least: shown.matching_at_least,
        page,
        per_page: service::RESULTS_PER_PAGE,
        next: shown.next,
        previous: shown.previous,
    })
}
