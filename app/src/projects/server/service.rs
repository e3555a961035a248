//! Rules for projects: everyone in the tenant reads, owners and admins create.

use super::store;
use crate::{
    db::{new_id, now, timestamp},
    error::AppError,
    people::CurrentUser,
    projects::{normalize_key, normalize_name, Project},
    state::AppState,
};

pub async fn list(state: &AppState, user: &CurrentUser) -> Result<Vec<Project>, AppError> {
    store::list(&state.db, &user.tenant_id).await
}

pub async fn create(state: &AppState, user: &CurrentUser, key: &str, name: &str) -> Result<Project, AppError> {
    if !user.role.can_manage() {
        return Err(AppError::forbidden("Only owners and admins can create projects."));
    }
    let project = Project {
        id: new_id(),
        key: normalize_key(key)?,
        name: normalize_name(name)?,
        created_at: timestamp(now()),
    };
    store::insert(&state.db, &user.tenant_id, &project).await?;
    Ok(project)
}
