//! Rules for projects: everyone in the tenant reads, owners and admins (and write
//! tokens) change them; a project token sees only its projects and cannot create any.

use serde_json::json;

use super::store;
use crate::{
    actor::{Actor, RequestMeta},
    audit::{server as audit, AuditAction, Party},
    db::{new_id, now, timestamp},
    error::AppError,
    policy::{self, Action},
    projects::{normalize_key, normalize_name, Project},
    state::AppState,
};

fn tenant_of(actor: &Actor) -> Result<&str, AppError> {
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

fn require_editor(actor: &Actor) -> Result<(), AppError> {
    policy::edit_project(&actor.permit(Action::WriteTestData)?)
}

fn target(p: &Project) -> Party {
    Party { kind: "project".into(), id: Some(p.id.clone()), label: Some(p.key.clone()) }
}

pub async fn list(state: &AppState, actor: &Actor) -> Result<Vec<Project>, AppError> {
    actor.permit(Action::ReadTestData)?;
    let mut projects = store::list(&state.db, tenant_of(actor)?).await?;
    if let Some(allowed) = actor.project_ids() {
        projects.retain(|p| allowed.contains(&p.id));
    }
    Ok(projects)
}

/// A project by key; a project outside a project token's list is "not found", exactly
/// like a missing one.
pub async fn get(state: &AppState, actor: &Actor, key: &str) -> Result<Project, AppError> {
    actor.permit(Action::ReadTestData)?;
    let not_found = || AppError::not_found("Project");
    let key = normalize_key(key).map_err(|_| not_found())?;
    let project = store::find(&state.db, tenant_of(actor)?, &key).await?.ok_or_else(not_found)?;
    match actor.project_ids() {
        Some(allowed) if !allowed.contains(&project.id) => Err(not_found()),
        _ => Ok(project),
    }
}

pub async fn create(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    key: &str,
    name: &str,
) -> Result<Project, AppError> {
    policy::create_project(&actor.permit(Action::WriteTestData)?)?;
    let tenant_id = tenant_of(actor)?;
    let project =
        Project { id: new_id(), key: normalize_key(key)?, name: normalize_name(name)?, created_at: timestamp(now()) };
    let mut tx = state.db.begin().await?;
    store::insert(&mut tx, tenant_id, &project).await?;
    let event = audit::Event {
        tenant_id,
        action: AuditAction::ProjectCreated,
        actor,
        target: Some(target(&project)),
        meta,
        details: Some(json!({ "name": project.name })),
        projects: std::slice::from_ref(&project.id),
    };
    audit::record(&mut tx, project.created_at.unix_timestamp(), event).await?;
    tx.commit().await?;
    Ok(project)
}

pub async fn rename(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    key: &str,
    name: &str,
) -> Result<Project, AppError> {
    require_editor(actor)?;
    let mut project = get(state, actor, key).await?;
    let name = normalize_name(name)?;
    let before = std::mem::replace(&mut project.name, name);
    let mut tx = state.db.begin().await?;
    store::rename(&mut tx, &project.id, &project.name).await?;
    let event = audit::Event {
        tenant_id: tenant_of(actor)?,
        action: AuditAction::ProjectRenamed,
        actor,
        target: Some(target(&project)),
        meta,
        details: Some(json!({ "before": before, "after": project.name })),
        projects: std::slice::from_ref(&project.id),
    };
    audit::record(&mut tx, now(), event).await?;
    tx.commit().await?;
    Ok(project)
}

pub async fn delete(state: &AppState, actor: &Actor, meta: &RequestMeta, key: &str) -> Result<(), AppError> {
    require_editor(actor)?;
    let project = get(state, actor, key).await?;
    let mut tx = state.db.begin().await?;
    store::delete(&mut tx, &project.id).await?;
    let event = audit::Event {
        tenant_id: tenant_of(actor)?,
        action: AuditAction::ProjectDeleted,
        actor,
        target: Some(target(&project)),
        meta,
        details: Some(json!({ "name": project.name })),
        projects: std::slice::from_ref(&project.id),
    };
    audit::record(&mut tx, now(), event).await?;
    tx.commit().await?;
    Ok(())
}
