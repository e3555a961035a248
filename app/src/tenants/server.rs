//! SQL for tenant settings, changed as `policy::change_tenant` allows and never so that
//! the change locks out the address making it. Host names are granted by the operator.

use serde_json::json;

use crate::{
    actor::{Actor, RequestMeta},
    addresses::{allowlist_admits, normalize_host, parse_allowlist},
    audit::{server as audit, AuditAction, Party},
    db::{now, Db},
    error::AppError,
    policy::{self, Action, TenantChange},
    state::AppState,
    tenants::{Ai, TenantSettings, UpdateTenant},
};

/// The workspace's longest token lifetime in days, if it has one.
pub async fn max_token_lifetime(db: &Db, tenant_id: &str) -> Result<Option<u32>, AppError> {
    let days: Option<Option<i64>> = sqlx::query_scalar("SELECT max_token_lifetime_days FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_optional(db)
        .await?;
    Ok(days.flatten().and_then(|d| u32::try_from(d).ok()))
}

pub async fn load(db: &Db, tenant_id: &str) -> Result<TenantSettings, AppError> {
    /// A `tenants` row, read by column name.
    #[derive(sqlx::FromRow)]
    struct Row {
        id: String,
        name: String,
        status: String,
        ip_allowlist: String,
        ai_provider: Option<String>,
        ai_model: Option<String>,
        ai_quota_exhausted: i64,
        token_rate_limit: Option<i64>,
        max_token_lifetime_days: Option<i64>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, name, status, ip_allowlist, ai_provider, ai_model, ai_quota_exhausted, token_rate_limit, \
         max_token_lifetime_days FROM tenants WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db)
    .await?;
    let row = row.ok_or_else(|| AppError::not_found("Workspace"))?;
    let hosts: Vec<String> = sqlx::query_scalar("SELECT host FROM tenant_hosts WHERE tenant_id = $1 ORDER BY host")
        .bind(tenant_id)
        .fetch_all(db)
        .await?;
    Ok(TenantSettings {
        id: row.id,
        name: row.name,
        status: row.status,
        ip_allowlist: row.ip_allowlist.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        hosts,
        ai: Ai { provider: row.ai_provider, model: row.ai_model, quota_exhausted: row.ai_quota_exhausted != 0 },
        token_rate_limit_per_minute: row.token_rate_limit.and_then(|n| u32::try_from(n).ok()),
        max_token_lifetime_days: row.max_token_lifetime_days.and_then(|n| u32::try_from(n).ok()),
    })
}

/// The longest maximum lifetime a workspace may set (ten years).
pub const MAX_LIFETIME_DAYS: u32 = 3650;

pub async fn get(state: &AppState, actor: &Actor) -> Result<TenantSettings, AppError> {
    actor.permit(Action::WorkspaceSettings)?;
    load(&state.db, actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))?).await
}

pub async fn update(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    req: UpdateTenant,
) -> Result<TenantSettings, AppError> {
    let cred = actor.permit(Action::WorkspaceSettings)?;
    let tenant_id = actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))?;
    let before = load(&state.db, tenant_id).await?;
    let change = TenantChange {
        ip_allowlist: req.ip_allowlist.is_some(),
        ai: req.ai_provider.is_some() || req.ai_model.is_some(),
        rate_limit: req.token_rate_limit_per_minute.is_some(),
        hosts: req.hosts.is_some(),
        // Saving the same maximum again (the Workspace page always sends it) is no change.
        max_lifetime: req
            .max_token_lifetime_days
            .filter(|after| *after != before.max_token_lifetime_days)
            .map(|after| (before.max_token_lifetime_days, after)),
    };
    policy::change_tenant(&cred, change)?;
    let now = now();
    let mut tx = state.db.begin().await?;
    if let Some(list) = &req.ip_allowlist {
        let nets = parse_allowlist(&list.join(","))?;
        let caller = meta.ip.as_deref().and_then(|ip| ip.parse().ok());
        if !allowlist_admits(&nets, caller) {
            return Err(AppError::invalid(format!(
                "This allowlist would lock out the address you are using ({}). Add it first.",
                meta.ip.as_deref().unwrap_or("unknown")
            )));
        }
        let text = nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        sqlx::query("UPDATE tenants SET ip_allowlist = $1 WHERE id = $2")
            .bind(text)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
    }
    for (column, value) in [("ai_provider", &req.ai_provider), ("ai_model", &req.ai_model)] {
        if let Some(value) = value {
            let value = value.trim();
            if value.chars().count() > 100 || value.chars().any(char::is_control) {
                return Err(AppError::invalid(format!("{column} has at most 100 printable characters.")));
            }
            let value = (!value.is_empty()).then_some(value);
            sqlx::query(&format!("UPDATE tenants SET {column} = $1 WHERE id = $2"))
                .bind(value)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(limit) = req.token_rate_limit_per_minute {
        if limit.is_some_and(|n| !(1..=crate::tokens::RATE_LIMIT_MAX).contains(&n)) {
            return Err(AppError::invalid(format!(
                "token_rate_limit_per_minute must be between 1 and {}.",
                crate::tokens::RATE_LIMIT_MAX
            )));
        }
        sqlx::query("UPDATE tenants SET token_rate_limit = $1 WHERE id = $2")
            .bind(limit.map(i64::from))
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
    }
    if let Some((_, days)) = change.max_lifetime {
        if days.is_some_and(|d| !(1..=MAX_LIFETIME_DAYS).contains(&d)) {
            return Err(AppError::invalid(format!(
                "max_token_lifetime_days must be between 1 and {MAX_LIFETIME_DAYS}, or null for no maximum."
            )));
        }
        sqlx::query("UPDATE tenants SET max_token_lifetime_days = $1 WHERE id = $2")
            .bind(days.map(i64::from))
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
    }
    let event = audit::Event {
        tenant_id,
        action: AuditAction::TenantSettingsChanged,
        actor,
        target: Some(Party { kind: "tenant".into(), id: Some(tenant_id.into()), label: Some(before.name.clone()) }),
        meta,
        details: Some(json!({
            "before": { "ip_allowlist": before.ip_allowlist, "ai": before.ai,
                "max_token_lifetime_days": before.max_token_lifetime_days },
            "after": { "ip_allowlist": req.ip_allowlist, "ai_provider": req.ai_provider, "ai_model": req.ai_model,
                "token_rate_limit_per_minute": req.token_rate_limit_per_minute,
                "max_token_lifetime_days": req.max_token_lifetime_days },
        })),
        projects: &[],
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await?;
    load(&state.db, tenant_id).await
}

/// A host name a tenant may be granted: a DNS name with a dot, never an address or
/// `localhost` (what the server answers on by default), so a grant cannot lock every
/// other tenant out of the server's own address.
pub fn grantable_host(input: &str) -> Result<String, AppError> {
    let host = normalize_host(input);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let dns = host.len() <= 253 && host.contains('.') && host.split('.').all(label_ok);
    let address = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    if !dns || address || host == "localhost" || host.ends_with(".localhost") {
        return Err(AppError::invalid(format!(
            "{input:?} is not a host name that can be granted: give a DNS name like qa.example.com (not an address or localhost)."
        )));
    }
    Ok(host)
}

/// The operator grants (`add`) or withdraws a host name for the tenant named `tenant`:
/// tokens of other tenants get 401 `invalid_token` on it. Audit-logged in the tenant.
pub async fn set_host(state: &AppState, tenant: &str, host: &str, add: bool) -> Result<String, AppError> {
    let host = if add { grantable_host(host)? } else { normalize_host(host) };
    let name = crate::people::normalize_tenant_name(tenant)?;
    let tenant_id: Option<String> =
        sqlx::query_scalar("SELECT id FROM tenants WHERE name = $1").bind(&name).fetch_optional(&state.db).await?;
    let tenant_id = tenant_id.ok_or_else(|| AppError::not_found(&format!("Workspace {name:?}")))?;
    let now = now();
    let mut tx = state.db.begin().await?;
    let changed = if add {
        sqlx::query("INSERT INTO tenant_hosts (host, tenant_id, created_at) VALUES ($1, $2, $3)")
            .bind(&host)
            .bind(&tenant_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| crate::db::on_unique(e, || AppError::conflict(format!("{host} is already granted."))))?
            .rows_affected()
    } else {
        sqlx::query("DELETE FROM tenant_hosts WHERE host = $1 AND tenant_id = $2")
            .bind(&host)
            .bind(&tenant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    if changed == 0 {
        return Err(AppError::not_found(&format!("Host {host} of workspace {name:?}")));
    }
    let event = audit::Event {
        tenant_id: &tenant_id,
        action: if add { AuditAction::TenantHostAdded } else { AuditAction::TenantHostRemoved },
        actor: &Actor::System,
        target: Some(Party { kind: "tenant".into(), id: Some(tenant_id.clone()), label: Some(name) }),
        meta: &RequestMeta::default(),
        details: Some(json!({ "host": host })),
        projects: &[],
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await?;
    Ok(host)
}
