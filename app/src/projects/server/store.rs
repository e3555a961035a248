//! SQL for projects, always scoped to one tenant.

use crate::{
    db::{on_unique, timestamp, Db},
    error::AppError,
    projects::Project,
};

type ProjectRow = (String, String, String, i64);

fn project((id, key, name, created_at): ProjectRow) -> Project {
    Project { id, key, name, created_at: timestamp(created_at) }
}

pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<Project>, AppError> {
    let rows: Vec<ProjectRow> =
        sqlx::query_as("SELECT id, key, name, created_at FROM projects WHERE tenant_id = $1 ORDER BY key")
            .bind(tenant_id)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(project).collect())
}

pub async fn insert(db: &Db, tenant_id: &str, project: &Project) -> Result<(), AppError> {
    sqlx::query("INSERT INTO projects (id, tenant_id, key, name, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&project.id)
        .bind(tenant_id)
        .bind(&project.key)
        .bind(&project.name)
        .bind(project.created_at.unix_timestamp())
        .execute(db)
        .await
        .map_err(|e| {
            on_unique(e, || AppError::conflict(format!("A project with key {} already exists.", project.key)))
        })?;
    Ok(())
}
