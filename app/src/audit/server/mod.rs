//! SQL for the audit log.

use sqlx::{Any, Transaction};

use crate::{
    actor::{Actor, RequestMeta},
    audit::{AuditEntry, Party},
    db::{timestamp, Db},
    error::AppError,
};

/// One event to record.
pub struct Event<'a> {
    pub tenant_id: &'a str,
    pub action: &'a str,
    pub actor: &'a Actor,
    pub target: Option<Party>,
    pub meta: &'a RequestMeta,
    pub details: Option<serde_json::Value>,
}

pub async fn record(tx: &mut Transaction<'_, Any>, now: i64, event: Event<'_>) -> Result<(), AppError> {
    let actor = event.actor.party();
    let target = event.target.unwrap_or(Party { kind: String::new(), id: None, label: None });
    sqlx::query(
        "INSERT INTO audit_log (tenant_id, created_at, action, actor_type, actor_id, actor_label, \
         target_type, target_id, target_label, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(event.tenant_id)
    .bind(now)
    .bind(event.action)
    .bind(actor.kind)
    .bind(actor.id)
    .bind(actor.label)
    .bind((!target.kind.is_empty()).then_some(target.kind))
    .bind(target.id)
    .bind(target.label)
    .bind(event.meta.ip.clone())
    .bind(event.meta.user_agent.clone())
    .bind(event.details.map(|d| d.to_string()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records one event in a transaction of its own (for events with no other change).
pub async fn record_alone(db: &Db, now: i64, event: Event<'_>) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    record(&mut tx, now, event).await?;
    tx.commit().await?;
    Ok(())
}

type Row = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Entries of a tenant in order, after the cursor id and at or after `since`.
pub async fn list(
    db: &Db,
    tenant_id: &str,
    since: Option<i64>,
    after_id: Option<i64>,
    action: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, AppError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, created_at, action, actor_type, actor_id, actor_label, target_type, target_id, \
         target_label, ip, user_agent, details FROM audit_log \
         WHERE tenant_id = $1 AND created_at >= $2 AND id > $3 AND ($4 = '' OR action = $4) \
         ORDER BY id LIMIT $5",
    )
    .bind(tenant_id)
    .bind(since.unwrap_or(i64::MIN))
    .bind(after_id.unwrap_or(0))
    .bind(action.unwrap_or(""))
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(entry).collect())
}

fn entry((id, at, action, actor_type, actor_id, actor_label, tt, tid, tl, ip, ua, details): Row) -> AuditEntry {
    AuditEntry {
        id: id.to_string(),
        created_at: timestamp(at),
        action,
        actor: Party { kind: actor_type, id: actor_id, label: actor_label },
        target: tt.map(|kind| Party { kind, id: tid, label: tl }),
        ip,
        user_agent: ua,
        details: details.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

/// Who may read the audit log: owners and admins, admin tokens, and `SIEM-LOG-ONLY` keys.
pub async fn page(
    state: &crate::state::AppState,
    actor: &Actor,
    since: Option<i64>,
    cursor: Option<&str>,
    action: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<AuditEntry>, Option<String>), AppError> {
    let tenant_id = may_read(actor)?;
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid("limit must be between 1 and 200."));
    }
    let after = cursor
        .map(|c| c.parse::<i64>().map_err(|_| AppError::invalid("The cursor is not one this server gave out.")))
        .transpose()?;
    let entries = list(&state.db, tenant_id, since, after, action, limit).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok((entries, next))
}

/// Owners and admins, admin tokens and `SIEM-LOG-ONLY` keys read the log of their tenant.
fn may_read(actor: &Actor) -> Result<&str, AppError> {
    let allowed = match actor {
        Actor::User(u) => u.role.can_manage(),
        Actor::Token(t) => {
            t.name.starts_with(crate::tokens::SIEM_PREFIX) || t.top_scope() == Some(crate::tokens::Scope::Admin)
        }
        Actor::System => true,
    };
    if !allowed {
        return Err(AppError::forbidden("Only owners and admins can read the audit log."));
    }
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

/// Newest first, before the cursor id: what the audit log page shows.
pub async fn recent(
    state: &crate::state::AppState,
    actor: &Actor,
    before: Option<&str>,
    action: Option<&str>,
    limit: i64,
) -> Result<(Vec<AuditEntry>, Option<String>), AppError> {
    let tenant_id = may_read(actor)?;
    let before = before
        .map(|c| c.parse::<i64>().map_err(|_| AppError::invalid("The cursor is not one this server gave out.")))
        .transpose()?
        .unwrap_or(i64::MAX);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, created_at, action, actor_type, actor_id, actor_label, target_type, target_id, \
         target_label, ip, user_agent, details FROM audit_log \
         WHERE tenant_id = $1 AND id < $2 AND ($3 = '' OR action = $3) ORDER BY id DESC LIMIT $4",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(action.unwrap_or(""))
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    let entries: Vec<AuditEntry> = rows.into_iter().map(entry).collect();
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok((entries, next))
}
