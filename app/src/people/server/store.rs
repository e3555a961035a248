//! SQL for tenants, users and memberships. No policy here: the service decides.

use sqlx::{Any, Transaction};

use crate::{
    db::{on_unique, Db},
    error::AppError,
    people::{AccountStatus, CurrentUser, Role},
};

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub status: AccountStatus,
}

/// A `users` row as stored, read by column name.
#[derive(sqlx::FromRow)]
struct UserRecord {
    id: String,
    email: String,
    password_hash: String,
    status: String,
}

/// A person's membership of one tenant, with both their statuses.
pub struct MembershipRow {
    pub user: CurrentUser,
    pub user_status: AccountStatus,
    pub tenant_status: AccountStatus,
}

/// Claims the once-only setup row; false when the instance was already set up.
pub async fn claim_instance(tx: &mut Transaction<'_, Any>, now: i64) -> Result<bool, AppError> {
    let done = sqlx::query("INSERT INTO instance (id, created_at) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn is_set_up(db: &Db) -> Result<bool, AppError> {
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(db).await?;
    let claimed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM instance").fetch_one(db).await?;
    Ok(users > 0 || claimed > 0)
}

pub async fn count_users(tx: &mut Transaction<'_, Any>) -> Result<i64, AppError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut **tx).await?;
    Ok(n)
}

pub async fn insert_tenant(tx: &mut Transaction<'_, Any>, id: &str, name: &str, now: i64) -> Result<(), AppError> {
    sqlx::query("INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, 'ACTIVE', $3)")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| on_unique(e, || AppError::conflict(format!("A workspace named {name:?} already exists."))))?;
    Ok(())
}

pub async fn find_tenant_id(db: &Db, name: &str) -> Result<Option<String>, AppError> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM tenants WHERE name = $1").bind(name).fetch_optional(db).await?;
    Ok(id)
}

pub async fn insert_user(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    email: &str,
    password_hash: &str,
    now: i64,
) -> Result<(), AppError> {
    sqlx::query("INSERT INTO users (id, email, password_hash, status, created_at) VALUES ($1, $2, $3, 'ACTIVE', $4)")
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| on_unique(e, || AppError::conflict(format!("{email} already has an account."))))?;
    Ok(())
}

pub async fn insert_membership(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    user_id: &str,
    role: Role,
    now: i64,
) -> Result<(), AppError> {
    sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(tenant_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn find_user_by_email(db: &Db, email: &str) -> Result<Option<UserRow>, AppError> {
    let row: Option<UserRecord> = sqlx::query_as("SELECT id, email, password_hash, status FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|row| UserRow {
        id: row.id,
        email: row.email,
        password_hash: row.password_hash,
        status: AccountStatus::parse(&row.status),
    }))
}

/// Every column has an alias: users and tenants both have `id` and `status`.
const MEMBERSHIP_SELECT: &str = "SELECT u.id AS user_id, u.email AS email, t.id AS tenant_id, \
     t.name AS tenant_name, m.role AS role, u.status AS user_status, t.status AS tenant_status \
     FROM memberships m JOIN users u ON u.id = m.user_id JOIN tenants t ON t.id = m.tenant_id";

/// A row of `MEMBERSHIP_SELECT`, read by column name.
#[derive(sqlx::FromRow)]
struct MembershipRecord {
    user_id: String,
    email: String,
    tenant_id: String,
    tenant_name: String,
    role: String,
    user_status: String,
    tenant_status: String,
}

fn membership(row: MembershipRecord) -> Result<MembershipRow, AppError> {
    Ok(MembershipRow {
        user: CurrentUser {
            user_id: row.user_id,
            email: row.email,
            tenant_id: row.tenant_id,
            tenant_name: row.tenant_name,
            role: Role::parse(&row.role)?,
        },
        user_status: AccountStatus::parse(&row.user_status),
        tenant_status: AccountStatus::parse(&row.tenant_status),
    })
}

/// The user's memberships, oldest first (the first is where a sign-in lands).
pub async fn memberships_of(db: &Db, user_id: &str) -> Result<Vec<MembershipRow>, AppError> {
    let rows: Vec<MembershipRecord> =
        sqlx::query_as(&format!("{MEMBERSHIP_SELECT} WHERE m.user_id = $1 ORDER BY m.created_at, t.name"))
            .bind(user_id)
            .fetch_all(db)
            .await?;
    rows.into_iter().map(membership).collect()
}

pub async fn membership_of(db: &Db, user_id: &str, tenant_id: &str) -> Result<Option<MembershipRow>, AppError> {
    let row: Option<MembershipRecord> =
        sqlx::query_as(&format!("{MEMBERSHIP_SELECT} WHERE m.user_id = $1 AND m.tenant_id = $2"))
            .bind(user_id)
            .bind(tenant_id)
            .fetch_optional(db)
            .await?;
    row.map(membership).transpose()
}

/// Returns how many tenants matched the name.
pub async fn set_tenant_status(db: &Db, name: &str, status: AccountStatus) -> Result<u64, AppError> {
    let done = sqlx::query("UPDATE tenants SET status = $1 WHERE name = $2")
        .bind(status.as_str())
        .bind(name)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Every membership of a tenant, by email.
pub async fn members_of(db: &Db, tenant_id: &str) -> Result<Vec<MembershipRow>, AppError> {
    let rows: Vec<MembershipRecord> =
        sqlx::query_as(&format!("{MEMBERSHIP_SELECT} WHERE m.tenant_id = $1 ORDER BY u.email"))
            .bind(tenant_id)
            .fetch_all(db)
            .await?;
    rows.into_iter().map(membership).collect()
}

/// Sets a user's status by id; returns whether it changed.
pub async fn set_user_status_by_id(db: &Db, user_id: &str, status: AccountStatus) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE users SET status = $1 WHERE id = $2 AND status <> $1")
        .bind(status.as_str())
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
