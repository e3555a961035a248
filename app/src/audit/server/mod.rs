//! SQL for the audit log.

use sqlx::{Any, Transaction};

use crate::{
    actor::{Actor, RequestMeta},
    audit::{AuditAction, AuditEntry, Party},
    db::{timestamp, Db},
    error::AppError,
    policy::{self, Action, AuditView},
};

/// One event to record.
pub struct Event<'a> {
    pub tenant_id: &'a str,
    pub action: AuditAction,
    pub actor: &'a Actor,
    pub target: Option<Party>,
    pub meta: &'a RequestMeta,
    pub details: Option<serde_json::Value>,
    /// The projects (ids) the entry is about; empty: tenant-wide, which only
    /// tenant-wide credentials read.
    pub projects: &'a [String],
}

pub async fn record(tx: &mut Transaction<'_, Any>, now: i64, event: Event<'_>) -> Result<(), AppError> {
    let actor = event.actor.party();
    let target = event.target.unwrap_or(Party { kind: String::new(), id: None, label: None });
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (tenant_id, created_at, action, actor_type, actor_id, actor_label, \
         target_type, target_id, target_label, ip, user_agent, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(event.tenant_id)
    .bind(now)
    .bind(event.action.as_str())
    .bind(actor.kind)
    .bind(actor.id)
    .bind(actor.label)
    .bind((!target.kind.is_empty()).then_some(target.kind))
    .bind(target.id)
    .bind(target.label)
    .bind(event.meta.ip.clone())
    .bind(event.meta.user_agent.clone())
    .bind(event.details.map(|d| d.to_string()))
    .fetch_one(&mut **tx)
    .await?;
    for project_id in event.projects {
        sqlx::query("INSERT INTO audit_log_projects (entry_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(id)
            .bind(project_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Records one event in a transaction of its own (for events with no other change).
pub async fn record_alone(db: &Db, now: i64, event: Event<'_>) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    record(&mut tx, now, event).await?;
    tx.commit().await?;
    Ok(())
}

/// An `audit_log` row, read by column name (`ENTRY_COLUMNS`).
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    created_at: i64,
    action: String,
    actor_type: String,
    actor_id: Option<String>,
    actor_label: Option<String>,
    target_type: Option<String>,
    target_id: Option<String>,
    target_label: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    details: Option<String>,
}

/// Which entries one query reads: a window of ids in one direction, an action, a view.
struct Query<'a> {
    tenant_id: &'a str,
    since: Option<i64>,
    /// Entries after this id, oldest first; or before it, newest first.
    after_id: Option<i64>,
    before_id: Option<i64>,
    action: Option<AuditAction>,
    view: &'a AuditView,
    limit: i64,
}

/// Aliased so that each column's name is the `Row` field it fills.
const ENTRY_COLUMNS: &str = "a.id AS id, a.created_at AS created_at, a.action AS action, \
     a.actor_type AS actor_type, a.actor_id AS actor_id, a.actor_label AS actor_label, \
     a.target_type AS target_type, a.target_id AS target_id, a.target_label AS target_label, \
     a.ip AS ip, a.user_agent AS user_agent, a.details AS details";

/// The SQL for a view: a project view reads entries about at least one project and
/// about none outside its projects (`$7…` are its ids).
fn view_filter(view: &AuditView) -> String {
    match view {
        AuditView::All => String::new(),
        // A credential whose projects are all gone reads nothing.
        AuditView::Projects(ids) if ids.is_empty() => " AND 1 = 0".to_string(),
        AuditView::Projects(ids) => {
            let list = (7..7 + ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            format!(
                " AND EXISTS (SELECT 1 FROM audit_log_projects ap WHERE ap.entry_id = a.id) \
                 AND NOT EXISTS (SELECT 1 FROM audit_log_projects ap WHERE ap.entry_id = a.id \
                 AND ap.project_id NOT IN ({list}))"
            )
        }
    }
}

async fn fetch(db: &Db, q: Query<'_>) -> Result<Vec<AuditEntry>, AppError> {
    let newest_first = q.before_id.is_some();
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log a \
         WHERE a.tenant_id = $1 AND a.created_at >= $2 AND a.id > $3 AND a.id < $4 AND ($5 = '' OR a.action = $5){} \
         ORDER BY a.id {} LIMIT $6",
        view_filter(q.view),
        if newest_first { "DESC" } else { "ASC" },
    );
    let mut query = sqlx::query_as::<_, Row>(&sql)
        .bind(q.tenant_id)
        .bind(q.since.unwrap_or(i64::MIN))
        .bind(q.after_id.unwrap_or(0))
        .bind(q.before_id.unwrap_or(i64::MAX))
        .bind(q.action.map_or("", AuditAction::as_str))
        .bind(q.limit);
    if let AuditView::Projects(ids) = q.view {
        for id in ids {
            query = query.bind(id.clone());
        }
    }
    let mut entries: Vec<AuditEntry> = query.fetch_all(db).await?.into_iter().map(entry).collect();
    if let AuditView::Projects(_) = q.view {
        // People are tenant-wide: a project credential sees that a person acted, not who.
        for e in &mut entries {
            for party in std::iter::once(&mut e.actor).chain(e.target.as_mut()) {
                if party.kind == "user" {
                    party.label = None;
                }
            }
        }
    }
    Ok(entries)
}

fn entry(row: Row) -> AuditEntry {
    let Row {
        id,
        created_at,
        action,
        actor_type,
        actor_id,
        actor_label,
        target_type,
        target_id,
        target_label,
        ip,
        user_agent,
        details,
    } = row;
    AuditEntry {
        id: id.to_string(),
        created_at: timestamp(created_at),
        action,
        actor: Party { kind: actor_type, id: actor_id, label: actor_label },
        target: target_type.map(|kind| Party { kind, id: target_id, label: target_label }),
        ip,
        user_agent,
        details: details.and_then(|d| serde_json::from_str(&d).ok()),
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>, AppError> {
    cursor
        .map(|c| c.parse::<i64>().map_err(|_| AppError::invalid("The cursor is not one this server gave out.")))
        .transpose()
}

fn tenant_of(actor: &Actor) -> Result<&str, AppError> {
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

/// Oldest first, after the cursor id (`GET /api/v1/audit-logs`): what `policy::read_audit`
/// lets the actor read.
pub async fn page(
    state: &crate::state::AppState,
    actor: &Actor,
    since: Option<i64>,
    cursor: Option<&str>,
    action: Option<AuditAction>,
    limit: Option<i64>,
) -> Result<(Vec<AuditEntry>, Option<String>), AppError> {
    let view = policy::read_audit(&actor.permit(Action::ReadAudit)?)?;
    let tenant_id = tenant_of(actor)?;
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::invalid("limit must be between 1 and 200."));
    }
    let after_id = parse_cursor(cursor)?;
    let query = Query { tenant_id, since, after_id, before_id: None, action, view: &view, limit };
    let entries = fetch(&state.db, query).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok((entries, next))
}

/// Newest first, before the cursor id: what the audit log page shows.
pub async fn recent(
    state: &crate::state::AppState,
    actor: &Actor,
    before: Option<&str>,
    action: Option<AuditAction>,
    limit: i64,
) -> Result<(Vec<AuditEntry>, Option<String>), AppError> {
    let view = policy::read_audit(&actor.permit(Action::ReadAudit)?)?;
    let tenant_id = tenant_of(actor)?;
    let before_id = Some(parse_cursor(before)?.unwrap_or(i64::MAX));
    let query = Query { tenant_id, since: None, after_id: None, before_id, action, view: &view, limit };
    let entries = fetch(&state.db, query).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok((entries, next))
}
