//! SQL for projects, always scoped to one tenant.

use sqlx::{Any, Transaction};

use crate::{
    db::{on_unique, timestamp, Db},
    error::AppError,
    projects::Project,
};

/// A `projects` row, read by column name.
#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: String,
    key: String,
    name: String,
    created_at: i64,
}

fn project(row: ProjectRow) -> Project {
    Project { id: row.id, key: row.key, name: row.name, created_at: timestamp(row.created_at) }
}

pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<Project>, AppError> {
    let rows: Vec<ProjectRow> =
        sqlx::query_as("SELECT id, key, name, created_at FROM projects WHERE tenant_id = $1 ORDER BY key")
            .bind(tenant_id)
            .fetch_all(db)
            .await?;
    Ok(rows.into_iter().map(project).collect())
}

pub async fn find(db: &Db, tenant_id: &str, key: &str) -> Result<Option<Project>, AppError> {
    let row: Option<ProjectRow> =
        sqlx::query_as("SELECT id, key, name, created_at FROM projects WHERE tenant_id = $1 AND key = $2")
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(db)
            .await?;
    Ok(row.map(project))
}

pub async fn insert(tx: &mut Transaction<'_, Any>, tenant_id: &str, project: &Project) -> Result<(), AppError> {
    sqlx::query("INSERT INTO projects (id, tenant_id, key, name, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&project.id)
        .bind(tenant_id)
        .bind(&project.key)
        .bind(&project.name)
        .bind(project.created_at.unix_timestamp())
        .execute(&mut **tx)
        .await
        .map_err(|e| {
            on_unique(e, || AppError::conflict(format!("A project with key {} already exists.", project.key)))
        })?;
    Ok(())
}

pub async fn rename(tx: &mut Transaction<'_, Any>, id: &str, name: &str) -> Result<(), AppError> {
    sqlx::query("UPDATE projects SET name = $1 WHERE id = $2").bind(name).bind(id).execute(&mut **tx).await?;
    Ok(())
}

pub async fn delete(tx: &mut Transaction<'_, Any>, id: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM projects WHERE id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}
