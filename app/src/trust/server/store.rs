//! SQL for trust policies and replayed ID tokens.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use crate::{
    db::{timestamp, Db},
    error::AppError,
    tokens::server::store::{scopes_from_text, scopes_to_text},
    trust::{PolicyStatus, TrustPolicy},
};

/// Whom a policy speaks for: whoever last created, changed or enabled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Creator {
    Person(String),
    Token(String),
    Operator,
    /// Saved before policies recorded it, with no audit entry naming anyone: it mints
    /// nothing until someone saves it again.
    Unknown,
}

impl Creator {
    fn from_columns(kind: Option<&str>, id: Option<String>) -> Self {
        match (kind, id) {
            (Some("person"), Some(id)) => Creator::Person(id),
            (Some("token"), Some(id)) => Creator::Token(id),
            (Some("operator"), _) => Creator::Operator,
            _ => Creator::Unknown,
        }
    }

    fn columns(&self) -> (Option<&'static str>, Option<&str>) {
        match self {
            Creator::Person(id) => (Some("person"), Some(id)),
            Creator::Token(id) => (Some("token"), Some(id)),
            Creator::Operator => (Some("operator"), None),
            Creator::Unknown => (None, None),
        }
    }
}

/// A policy row with its project ids and keys (`None`: every project).
#[derive(Clone, Debug)]
pub struct PolicyRow {
    pub tenant_id: String,
    pub policy: TrustPolicy,
    pub project_ids: Option<Vec<String>>,
    pub creator: Creator,
}

const COLUMNS: &str = "p.id, p.tenant_id, p.name, p.issuer, p.audience, p.conditions, p.all_projects, p.scopes, \
     p.token_lifetime_minutes, p.status, u.email AS created_by_email, p.created_at, p.creator_kind, p.creator_id";

fn policy_row(row: &AnyRow) -> Result<PolicyRow, sqlx::Error> {
    let conditions: String = row.try_get("conditions")?;
    let all: i64 = row.try_get("all_projects")?;
    let status: String = row.try_get("status")?;
    let creator_kind: Option<String> = row.try_get("creator_kind")?;
    Ok(PolicyRow {
        tenant_id: row.try_get("tenant_id")?,
        project_ids: (all == 0).then(Vec::new),
        creator: Creator::from_columns(creator_kind.as_deref(), row.try_get("creator_id")?),
        policy: TrustPolicy {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            issuer: row.try_get("issuer")?,
            audience: row.try_get("audience")?,
            conditions: serde_json::from_str(&conditions).unwrap_or_default(),
            projects: (all == 0).then(Vec::new),
            scopes: scopes_from_text(&row.try_get::<String, _>("scopes")?),
            token_lifetime_minutes: u32::try_from(row.try_get::<i64, _>("token_lifetime_minutes")?).unwrap_or(1),
            status: PolicyStatus::parse(&status),
            created_by: row.try_get("created_by_email")?,
            created_at: timestamp(row.try_get("created_at")?),
        },
    })
}

/// One project a restricted policy mints for.
#[derive(sqlx::FromRow)]
struct PolicyProject {
    policy_id: String,
    project_id: String,
    project_key: String,
}

/// Fills in the projects of restricted policies, in one query.
async fn with_projects(db: &Db, mut rows: Vec<PolicyRow>) -> Result<Vec<PolicyRow>, AppError> {
    let ids: Vec<&str> = rows.iter().filter(|r| r.project_ids.is_some()).map(|r| r.policy.id.as_str()).collect();
    if ids.is_empty() {
        return Ok(rows);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT tp.policy_id AS policy_id, pr.id AS project_id, pr.key AS project_key \
         FROM trust_policy_projects tp JOIN projects pr ON pr.id = tp.project_id WHERE tp.policy_id IN ({}) ORDER BY pr.key",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, PolicyProject>(&sql);
    for id in &ids {
        query = query.bind(*id);
    }
    let found = query.fetch_all(db).await?;
    for row in &mut rows {
        if let (Some(ids), Some(keys)) = (row.project_ids.as_mut(), row.policy.projects.as_mut()) {
            for project in found.iter().filter(|p| p.policy_id == row.policy.id) {
                ids.push(project.project_id.clone());
                keys.push(project.project_key.clone());
            }
        }
    }
    Ok(rows)
}

pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<PolicyRow>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM trust_policies p LEFT JOIN users u ON u.id = p.created_by \
         WHERE p.tenant_id = $1 ORDER BY p.created_at, p.id"
    ))
    .bind(tenant_id)
    .fetch_all(db)
    .await?;
    with_projects(db, rows.iter().map(policy_row).collect::<Result<_, _>>()?).await
}

pub async fn find(db: &Db, tenant_id: &str, id: &str) -> Result<Option<PolicyRow>, AppError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM trust_policies p LEFT JOIN users u ON u.id = p.created_by \
         WHERE p.tenant_id = $1 AND p.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_projects(db, vec![policy_row(&row)?]).await?.pop())
}

/// The active policies of one workspace that trust `issuer`: the exchange's candidates.
/// Another workspace's policies are never read, so they can neither block nor capture
/// this workspace's jobs.
pub async fn active_for_issuer(db: &Db, tenant_id: &str, issuer: &str) -> Result<Vec<PolicyRow>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM trust_policies p LEFT JOIN users u ON u.id = p.created_by \
         WHERE p.tenant_id = $1 AND p.issuer = $2 AND p.status = 'active' ORDER BY p.created_at, p.id"
    ))
    .bind(tenant_id)
    .bind(issuer)
    .fetch_all(db)
    .await?;
    with_projects(db, rows.iter().map(policy_row).collect::<Result<_, _>>()?).await
}

/// Inserts or replaces a policy and its projects; `creator` is whom it speaks for from now on.
pub async fn save(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    p: &TrustPolicy,
    project_ids: Option<&[String]>,
    created_by: Option<&str>,
    creator: &Creator,
    now: i64,
) -> Result<(), AppError> {
    let (creator_kind, creator_id) = creator.columns();
    let conditions = serde_json::to_string(&p.conditions).map_err(|_| AppError::internal())?;
    sqlx::query(
        "INSERT INTO trust_policies (id, tenant_id, name, issuer, audience, conditions, all_projects, scopes, \
         token_lifetime_minutes, status, created_by, created_at, updated_at, creator_kind, creator_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET name = $3, audience = $5, conditions = $6, all_projects = $7, scopes = $8, \
         token_lifetime_minutes = $9, status = $10, updated_at = $12, creator_kind = $13, creator_id = $14 \
         WHERE trust_policies.tenant_id = $2",
    )
    .bind(&p.id)
    .bind(tenant_id)
    .bind(&p.name)
    .bind(&p.issuer)
    .bind(&p.audience)
    .bind(conditions)
    .bind(i64::from(project_ids.is_none()))
    .bind(scopes_to_text(&p.scopes))
    .bind(i64::from(p.token_lifetime_minutes))
    .bind(p.status.as_str())
    .bind(created_by)
    .bind(now)
    .bind(creator_kind)
    .bind(creator_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM trust_policy_projects WHERE policy_id = $1").bind(&p.id).execute(&mut **tx).await?;
    for id in project_ids.unwrap_or_default() {
        sqlx::query("INSERT INTO trust_policy_projects (policy_id, project_id) VALUES ($1, $2)")
            .bind(&p.id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub async fn delete(tx: &mut Transaction<'_, Any>, id: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM trust_policies WHERE id = $1").bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// Records an ID token's `jti` (hashed) until it expires; `false` when it was seen.
pub async fn first_use_of(db: &Db, jti_hash: &str, expires_at: i64, now: i64) -> Result<bool, AppError> {
    sqlx::query("DELETE FROM oidc_jtis WHERE expires_at < $1").bind(now - 300).execute(db).await?;
    let done = sqlx::query("INSERT INTO oidc_jtis (jti_hash, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(jti_hash)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
