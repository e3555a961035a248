//! Server functions for the projects page; the bodies call `projects::server::service`.

use leptos::prelude::*;

use crate::{error::AppError, projects::Project};

#[server(prefix = "/_qh", endpoint = "projects/list")]
pub async fn list_projects() -> Result<Vec<Project>, AppError> {
    let (state, user) = crate::server_fn_ctx::require_user().await?;
    crate::projects::server::service::list(&state, &crate::actor::Actor::User(user)).await
}

#[server(prefix = "/_qh", endpoint = "projects/create")]
pub async fn create_project(key: String, name: String) -> Result<Project, AppError> {
    use crate::server_fn_ctx::{finish_form, request_meta, require_user};
    let result = async {
        let (state, user) = require_user().await?;
        let actor = crate::actor::Actor::User(user);
        crate::projects::server::service::create(&state, &actor, &request_meta().await, &key, &name).await
    }
    .await;
    finish_form(result, None)
}
