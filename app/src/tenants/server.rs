//! SQL and rules for tenant settings. Only owners and admins (or admin tokens) change
//! them, and never so that the change locks out the address making it.

use serde_json::json;

use crate::{
    actor::{Actor, RequestMeta},
    audit::{server as audit, Party},
    db::{now, Db},
    error::AppError,
    state::AppState,
    tenants::{Ai, TenantSettings, UpdateTenant},
    tokens::server::auth::{allowlist_admits, normalize_host, parse_allowlist},
};

async fn load(db: &Db, tenant_id: &str) -> Result<TenantSettings, AppError> {
    type Row = (String, String, String, String, Option<String>, Option<String>, i64, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, name, status, ip_allowlist, ai_provider, ai_model, ai_quota_exhausted, token_rate_limit \
         FROM tenants WHERE id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db)
    .await?;
    let (id, name, status, allowlist, provider, model, exhausted, rate_limit) =
        row.ok_or_else(|| AppError::not_found("Workspace"))?;
    let hosts: Vec<(String,)> = sqlx::query_as("SELECT host FROM tenant_hosts WHERE tenant_id = $1 ORDER BY host")
        .bind(tenant_id)
        .fetch_all(db)
        .await?;
    Ok(TenantSettings {
        id,
        name,
        status,
        ip_allowlist: allowlist.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        hosts: hosts.into_iter().map(|(h,)| h).collect(),
        ai: Ai { provider, model, quota_exhausted: exhausted != 0 },
        token_rate_limit_per_minute: rate_limit.and_then(|n| u32::try_from(n).ok()),
    })
}

pub async fn get(state: &AppState, actor: &Actor) -> Result<TenantSettings, AppError> {
    load(&state.db, actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))?).await
}

pub async fn update(
    state: &AppState,
    actor: &Actor,
    meta: &RequestMeta,
    req: UpdateTenant,
) -> Result<TenantSettings, AppError> {
    if !actor.role().is_some_and(|r| r.can_manage()) {
        return Err(AppError::forbidden("Only owners and admins can change workspace settings."));
    }
    let tenant_id = actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))?;
    let before = load(&state.db, tenant_id).await?;
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
    if let Some(hosts) = &req.hosts {
        sqlx::query("DELETE FROM tenant_hosts WHERE tenant_id = $1").bind(tenant_id).execute(&mut *tx).await?;
        for host in hosts {
            let host = normalize_host(host);
            let valid = !host.is_empty()
                && host.len() <= 253
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
            if !valid {
                return Err(AppError::invalid(format!("{host:?} is not a host name.")));
            }
            sqlx::query("INSERT INTO tenant_hosts (host, tenant_id, created_at) VALUES ($1, $2, $3)")
                .bind(&host)
                .bind(tenant_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| crate::db::on_unique(e, || AppError::conflict(format!("{host} is already claimed."))))?;
        }
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
    let after_hosts = req.hosts.clone();
    let event = audit::Event {
        tenant_id,
        action: "tenant.settings_changed",
        actor,
        target: Some(Party { kind: "tenant".into(), id: Some(tenant_id.into()), label: Some(before.name.clone()) }),
        meta,
        details: Some(json!({
            "before": { "ip_allowlist": before.ip_allowlist, "hosts": before.hosts, "ai": before.ai },
            "after": { "ip_allowlist": req.ip_allowlist, "hosts": after_hosts, "ai_provider": req.ai_provider, "ai_model": req.ai_model,
                "token_rate_limit_per_minute": req.token_rate_limit_per_minute },
        })),
    };
    audit::record(&mut tx, now, event).await?;
    tx.commit().await?;
    load(&state.db, tenant_id).await
}
